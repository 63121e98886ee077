"""NFQUEUE capture (``ENABLE_NFQ_CAPTURE``, ``-n``): SPA packets handed over by netfilter itself.

As in fwknopd 2.6.9+, the firewall sends the SPA port's packets to a queue
(``NFQ_QUEUE_NUMBER``; the rule is the firewall backend's, made at start:
``NFQ_TABLE``/``NFQ_CHAIN`` with iptables and firewalld, a table of ours
with nftables), and we read them from it, whole IP packets, and give each
its verdict at once: dropped when it was queued on its way in (the input
hook), accepted anywhere else, as fwknopd does. So the SPA packet never
reaches a socket, and no packet socket sniffs the interface.

The queue is read with NetfilterQueue (libnetfilter_queue), a well-kept
binding. Its file descriptor is the event loop's to wait on, and each read
handles at most a batch of the queue's messages, so a flood cannot hold the
loop. The library is an optional dependency (``fwknop-tui[nfqueue]``):
without it, asking for NFQUEUE capture fails at start with the reason.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..vocab import Packet
from .frames import Addresses, Check, Parse, ip_parser

if TYPE_CHECKING:
    from netfilterqueue import Packet as QueuedPacket

__all__ = ["NfqueueSource", "queue_drops"]

log = logging.getLogger("fwknop_server.capture")

_BATCH = 1024  # queue messages handled per read, at most
_INPUT_HOOK = 1  # NF_INET_LOCAL_IN: the packet was on its way to this host
_QUEUE_LENGTH = 16384  # packets the kernel holds for us before it drops (its default is 1024)
# our socket's buffer, as UDPSERV_RCVBUF's default: a full one makes the kernel drop a packet
# it would have queued (the library's default holds about 1000 messages)
_RCVBUF = 16 << 20
_COPY_RANGE = 65535
_PROC = Path("/proc/net/netfilter/nfnetlink_queue")  # this network namespace's queues


def queue_drops(text: str, queue: int) -> int | None:
    """The packets the kernel dropped for ``queue`` (queue full, or our socket's buffer), from
    ``/proc/net/netfilter/nfnetlink_queue``'s text; None if the queue is not listed."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 7 and fields[0].isdigit() and int(fields[0]) == queue:
            return int(fields[5]) + int(fields[6])  # queue_dropped, user_dropped
    return None


class _Batch:
    """The queue's socket as NetfilterQueue reads it, ending a read after ``limit`` messages."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self._recv = sock.recv
        self._left = limit

    def recv(self, size: int) -> bytes:
        """One message; EAGAIN (the library's "nothing more now") once the batch is done."""
        if self._left <= 0:
            raise BlockingIOError(errno.EAGAIN, "batch done")
        self._left -= 1
        return self._recv(size)


class NfqueueSource:
    """The packets of NFQUEUE ``queue``, each given its verdict as it is read."""

    def __init__(self, queue: int) -> None:
        try:
            from netfilterqueue import COPY_PACKET, NetfilterQueue  # noqa: PLC0415 - optional
        except ImportError:
            raise OSError(
                errno.ENOPROTOOPT,
                "NFQUEUE capture needs the NetfilterQueue package "
                "(pip install 'fwknop-tui[nfqueue]'; it builds on libnetfilter-queue-dev)",
            ) from None
        nfq: Any = NetfilterQueue()
        try:
            nfq.bind(queue, self._on_packet, max_len=_QUEUE_LENGTH, mode=COPY_PACKET,
                     range=_COPY_RANGE, sock_len=_RCVBUF)  # fmt: skip
            # a descriptor of our own: the library keeps, and closes, its own
            sock = socket.socket(fileno=os.dup(nfq.get_fd()))
            sock.setblocking(False)
        except OSError as exc:
            nfq.unbind()
            why = exc.strerror or str(exc)
            raise OSError(exc.errno or errno.EPERM, f"cannot read NFQUEUE {queue}: {why}") from None
        self._nfq = nfq
        self._sock = sock
        self.queue = queue
        self.description = f"NFQUEUE {queue}"
        self._addresses = Addresses()
        self._check: Check | None = None
        self._parse: Parse = ip_parser(None, self._addresses)
        self._found: list[Packet] = []
        self.failures: list[Exception] = []  # see Source
        self._dropped = self._kernel_drops()

    def fileno(self) -> int:
        """The queue's netlink socket, for the event loop."""
        return self._sock.fileno()

    def read(self, check: Check | None = None) -> list[Packet]:
        """The packets queued (a batch at most), each screened by ``check``; never blocks.

        Every packet gets its verdict here, whatever the screen says of it.
        What the screen mutes is counted there and left out.
        """
        if check is not self._check:
            self._check = check
            self._parse = ip_parser(check, self._addresses)
        self._found = []
        self._nfq.run_socket(_Batch(self._sock, _BATCH))
        found, self._found = self._found, []
        return found

    def _on_packet(self, queued: QueuedPacket) -> None:
        """NetfilterQueue's callback, for each packet read: parse it, then its verdict.

        A packet that makes parsing or the screen raise is dropped alone and its
        exception kept in ``failures`` (the dispatcher counts them); every packet
        gets its verdict.
        """
        try:
            data = queued.get_payload()
            packet = self._parse(data, 0, len(data))
            if packet is not None:
                self._found.append(packet)
        except Exception as exc:  # this packet alone: the batch goes on
            self.failures.append(exc)
        finally:
            if queued.hook == _INPUT_HOOK:
                queued.drop()  # an SPA packet for this host: consumed, as fwknopd does
            else:
                queued.accept()

    def _kernel_drops(self) -> int:
        try:
            return queue_drops(_PROC.read_text(), self.queue) or 0
        except OSError:
            return 0

    def drops(self) -> int:
        """Packets the kernel dropped before we read them, since the last call (SIGUSR1)."""
        now = self._kernel_drops()
        dropped, self._dropped = max(0, now - self._dropped), now
        return dropped

    def close(self) -> None:
        """Stop reading: the kernel drops what is still queued."""
        self._nfq.unbind()
        self._sock.close()
