"""Did the knock open the port? TCP probes that answer fast and do not lie.

A verify that connects after the knock proves the knock worked only if the
port was closed before it. So a knock that verifies starts one probe
*before* the packet goes out (``PreProbe``): a non-blocking connect whose
SYN leaves ahead of the knock on the same path and so reaches the firewall
before the rule exists. If the port was already open (another grant still
running, a port that is not behind the firewall), that SYN is answered at
once: the result says so, and a caller says the verify proves nothing.
It costs the knock no time: nobody waits for it.

After the knock, ``race_connect`` starts a new connection attempt every few
milliseconds at first (10 ms, doubling up to the profile's interval) and
keeps the earlier ones open, because a SYN that reached a default-drop
firewall before the rule was in place is only retransmitted a second later.
The first attempt that connects wins; the rest are closed before they
finish. A knock whose rule is in place within 5 ms verifies about one
round trip after the second attempt, instead of after a fixed interval.

One subtlety: the pre-knock probe's own SYN is retransmitted after the
kernel's initial timeout (one second on Linux), so it can also connect
*because of* the knock. Only an answer to its first SYN means the port was
open before: the kernel says whether the SYN was retransmitted
(``TCP_INFO``'s ``tcpi_total_retrans``), which holds however late we look
(a 1.x knock sequence takes seconds); where that is not available, an
answer seen within ``FIRST_SYN_WINDOW`` of the start counts as one.

Every loop is bounded by a deadline; at most ``MAX_PENDING`` attempts are
in flight at once.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import threading

__all__ = [
    "FIRST_SYN_WINDOW",
    "PreProbe",
    "Race",
    "answered_first_syn",
    "attempt_offsets",
    "race_connect",
]

FIRST_GAP = 0.01
MAX_PENDING = 16
FIRST_SYN_WINDOW = 1.0  # Linux's initial SYN retransmission timeout (TCP_TIMEOUT_INIT)
CANCEL_POLL = 0.1


def attempt_offsets(budget: float, max_gap: float) -> list[float]:
    """When attempts start, in seconds after the knock: 10 ms apart, doubling up to ``max_gap``."""
    out: list[float] = []
    at, gap = 0.0, FIRST_GAP
    while at < budget:
        out.append(round(at, 6))
        at += gap
        gap = min(gap * 2, max(max_gap, FIRST_GAP))
    return out


def _start(af: int, address: str, port: int) -> socket.socket | None:
    """A socket whose connect is under way (its SYN is out); None if it failed at once."""
    sock = socket.socket(af, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex((address, port))
    if code in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
        return sock
    sock.close()
    return None


def _connected(sock: socket.socket) -> bool:
    """After a write event: whether the connect succeeded."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


_TCP_INFO_LEN = 104  # struct tcp_info up to tcpi_total_retrans (linux/tcp.h)
_TOTAL_RETRANS = 100  # its offset


def answered_first_syn(sock: socket.socket, started: float) -> bool:
    """Whether a connected socket's first SYN was answered (not a retransmitted one)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):  # not Linux: fall back on when we saw it
        return time.monotonic() - started < FIRST_SYN_WINDOW
    if len(info) < _TCP_INFO_LEN:
        return time.monotonic() - started < FIRST_SYN_WINDOW
    retransmitted: int = struct.unpack_from("I", info, _TOTAL_RETRANS)[0]
    return retransmitted == 0


class PreProbe:
    """One connection attempt started before the knock, to learn whether the port was open."""

    def __init__(self, af: int, address: str, port: int) -> None:
        self.started = time.monotonic()
        self.sock = _start(af, address, port)

    def close(self) -> None:
        """Forget it (an unfinished connect is dropped without a word on the wire)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass
class Race:
    """How ``race_connect`` ended: the connected socket (if any), attempts, seconds."""

    sock: socket.socket | None
    attempts: int
    seconds: float
    open_before: bool = False
    cancelled: bool = False


def race_connect(
    af: int,
    address: str,
    port: int,
    *,
    budget: float,
    max_gap: float,
    pre: PreProbe | None = None,
    cancel: threading.Event | None = None,
) -> Race:
    """Connect to ``address:port`` within ``budget`` seconds, starting attempts ever less often.

    ``pre`` is the probe started before the knock: if it connected within
    ``FIRST_SYN_WINDOW`` the port was open before, and the result says so
    (``open_before``). The caller owns the returned socket (blocking mode).
    """
    start = time.monotonic()
    deadline = start + budget
    schedule = [start + offset for offset in attempt_offsets(budget, max_gap)]
    sel = selectors.DefaultSelector()
    pending: list[socket.socket] = []
    attempts = 0
    if pre is not None and pre.sock is not None:
        sel.register(pre.sock, selectors.EVENT_WRITE, pre)

    def drop(sock: socket.socket) -> None:
        sel.unregister(sock)
        if sock in pending:
            pending.remove(sock)
        sock.close()

    def done(
        winner: socket.socket | None, *, before: bool = False, cancelled: bool = False
    ) -> Race:
        for sock in [*pending, *([pre.sock] if pre is not None and pre.sock else [])]:
            if sock is not winner:
                sock.close()
        if pre is not None and pre.sock is winner:
            pre.sock = None  # handed over
        sel.close()
        if winner is not None:
            winner.setblocking(True)
        return Race(winner, attempts, time.monotonic() - start, before, cancelled)

    try:
        while True:
            if attempts < len(schedule) and time.monotonic() >= schedule[attempts]:
                sock = _start(af, address, port)
                attempts += 1
                if sock is not None:
                    pending.append(sock)
                    sel.register(sock, selectors.EVENT_WRITE, "attempt")
                    if len(pending) > MAX_PENDING:
                        drop(pending[0])
            if cancel is not None and cancel.is_set():
                return done(None, cancelled=True)
            upcoming = schedule[attempts] if attempts < len(schedule) else deadline
            wait = min(upcoming, deadline) - time.monotonic()
            if cancel is not None:
                wait = min(wait, CANCEL_POLL)
            for key, _events in sel.select(max(0.0, wait)):
                sock = cast("socket.socket", key.fileobj)
                if isinstance(key.data, PreProbe):
                    pre = key.data
                    if not _connected(sock):
                        sel.unregister(sock)
                        pre.close()
                        continue
                    return done(sock, before=answered_first_syn(sock, pre.started))
                if _connected(sock):
                    return done(sock)
                drop(sock)  # refused: the next attempt follows on schedule
            if time.monotonic() >= deadline:
                return done(None)
    except BaseException:
        done(None)
        raise
