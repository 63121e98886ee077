"""The knock listener's capture: the SYNs, datagrams and echoes the knock stanzas wait for.

Beside SPA capture, on the same interface (``PCAP_INTF``), a second
``AF_PACKET`` socket with its own kernel filter: the knock rules' port
ranges and steps (``knock.capture_filter``), and, when an SPA stanza has
``REQUIRE_OS``, the pure SYNs of connections that SPA capture would see.
No iptables LOG rule, no syslog: the kernel hands us the packets, before
the firewall drops them, and we never answer one. Packets come out as IP
layer bytes, for ``knock.parse_knock``; this module parses nothing. Their
time is when they are read (the collector's one clock, the daemon's): a
batch is read within a millisecond or so of its arrival, and fwknop 1.x
timed knocks in whole seconds.

The receive ring is the SPA capture's (``ring.py``), with smaller frames: a
knock is a bare SYN, a one-byte datagram or an echo request, and a longer
packet that does not fit a frame is dropped (none of them is a knock of the
1.x client or ours).

``local_addresses`` reads this host's (this network namespace's) local
addresses from ``/proc/net``, so that knocks to other hosts (a router sees
them pass) do not count: fwknop 1.x saw only what its INPUT chain logged.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import mmap
import os
import socket
from pathlib import Path

from .sources import PacketSocket, open_packet_socket

__all__ = ["KnockSource", "local_addresses"]

log = logging.getLogger("fwknop_server.capture")

_PACKET_OUTGOING = 4
_BATCH = 1024
# 16 MiB: over a second of a 50,000 SYN/s flood waits here while a busy host runs others
_FRAMES = 65536
_FRAME = 256  # the ring header, the link address and a knock (a SYN with options: 60-80 bytes)
_MAX_READ = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _copy(ring: mmap.mmap, offset: int, length: int) -> bytes:
    """The packet at ``offset`` in the ring, copied out (the frame goes back at once)."""
    return ring[offset : offset + length]


class KnockSource(PacketSocket):
    """Packets matching ``bpf_filter`` on ``interface`` (``any``: every interface), IP layer on."""

    def __init__(self, interface: str, bpf_filter: str, *, any_direction: bool = False) -> None:
        sock, self.ring, self._kernel_filters_direction = open_packet_socket(
            interface, bpf_filter, what="capture knocks", any_direction=any_direction,
            frames=_FRAMES, frame_size=_FRAME,
        )  # fmt: skip
        self.sock = sock
        self.any_direction = any_direction
        self.filter = bpf_filter
        self.description = f"knocks on {interface}"

    def read(self) -> list[bytes]:
        """The waiting packets (a batch at most), IP layer on; never blocks."""
        skip_outgoing = not (self.any_direction or self._kernel_filters_direction)
        if self.ring is not None:
            found = self.ring.read(_BATCH, _copy, skip_outgoing=skip_outgoing)
            if not self.ring.consumed and (
                error := self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            ):
                raise OSError(error, os.strerror(error))
            return found
        packets = []
        for _ in range(_BATCH):
            try:
                data, addr = self.sock.recvfrom(_MAX_READ)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if not (skip_outgoing and addr[2] == _PACKET_OUTGOING):
                packets.append(data)
        return packets


def _fib_locals(text: str) -> list[Network]:
    """The ``host LOCAL`` routes of ``/proc/net/fib_trie``: an address line, then its route."""
    nets: list[Network] = []
    address = None
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "|--":
            address = words[1]
        elif address is not None and words[1:3] == ["host", "LOCAL"] and words[0][:1] == "/":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(f"{address}{words[0]}", strict=False))
    return nets


def _inet6_locals(text: str) -> list[Network]:
    """The addresses of ``/proc/net/if_inet6`` (one 32-digit hex address per line)."""
    nets: list[Network] = []
    for line in text.splitlines():
        words = line.split()
        if words and len(words[0]) == 32:
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv6Network(int(words[0], 16)))
    return nets


def local_addresses(proc: Path = Path("/proc/net")) -> tuple[Network, ...] | None:
    """This network namespace's local addresses (as networks), or None if they cannot be read."""
    try:
        v4 = _fib_locals((proc / "fib_trie").read_text())
    except OSError as exc:
        log.warning("cannot read local addresses (%s): knocks to any address count", exc)
        return None
    try:
        v6 = _inet6_locals((proc / "if_inet6").read_text())
    except OSError:
        v6 = []  # no IPv6 here
    return tuple(dict.fromkeys(v4 + v6))
