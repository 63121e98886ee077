"""Reading a capture source as packets come: woken by the event loop, on a timer while busy.

The event loop wakes when a source has packets (no sleep-and-poll loop).
While packets keep coming, the source is read on a 1 ms timer instead, as
the kernel's NAPI does with interrupts: on a virtual machine a wakeup costs
more than deciding a packet, so a flood is read in batches, and the first
quiet read goes back to waking on arrival, so a lone knock is read at once
(a longer pause saves little more: what a packet costs after an idle
moment, with cold caches, is what remains). Also after a wakeup that found
nothing: the socket can stay readable (a frame the kernel skipped in the
ring, see ring.py), and waking again at once would spin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["Readable", "Reader"]

POLL_PAUSE = 0.001  # seconds between reads while packets come (adds at most this to a grant)
BUSY = 512  # packets in one read that mean a backlog: read again without a pause


class Readable(Protocol):
    """What a reader waits on: a capture source (SPA's ``Source``, the knock listener's ...)."""

    description: str

    def fileno(self) -> int:
        """What the event loop waits on."""
        ...

    def close(self) -> None:
        """Stop capturing."""
        ...


S = TypeVar("S", bound=Readable)


class Reader(Generic[S]):
    """Reads ``source`` with ``read`` (which says how many packets it took) while it is open."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, source: S, read: Callable[[S], int]
    ) -> None:
        self.loop = loop
        self.source = source
        self._read = read
        self._open = False

    def start(self) -> None:
        """Wake on the source's next packet."""
        self._open = True
        self.loop.add_reader(self.source.fileno(), self._on_readable)

    def stop(self) -> None:
        """Stop reading (the source stays open: its owner closes it)."""
        self._open = False
        self.loop.remove_reader(self.source.fileno())

    def _on_readable(self) -> None:
        """The source woke us: read what is there, then read on a timer while packets come."""
        self._read(self.source)
        if self._open:
            self.loop.remove_reader(self.source.fileno())
            self.loop.call_later(POLL_PAUSE, self._poll)

    def _poll(self) -> None:
        """Timer-driven reading during traffic; back to waking on arrival once it is quiet."""
        if not self._open:
            return  # stopped meanwhile
        count = self._read(self.source)
        if not self._open:
            return
        if count >= BUSY:
            self.loop.call_soon(self._poll)  # a backlog: no pause
        elif count:
            self.loop.call_later(POLL_PAUSE, self._poll)
        else:
            self.loop.add_reader(self.source.fileno(), self._on_readable)
