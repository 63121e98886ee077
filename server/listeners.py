"""The capture sources a running daemon reads: SPA capture first, then the knock listener's.

Each open source has a ``Reader`` on the event loop. SPA capture is read by
the dispatcher; the knock listener (only when the stanzas want one) by
``Knocks``. When an SPA stanza asks for the SYN of its packet's TCP
connection (REQUIRE_OS), the knocks waiting on the knock socket are read
before each SPA batch: the SYN reached that socket before the data reached
SPA capture. A reload may swap either source; the old one is closed only
once the new one is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .capture import CaptureSettings, Source, open_source
from .capture.reader import Readable, Reader
from .capture.syn import KnockSource
from .dispatch import Dispatcher
from .knocks import Knocks, KnockSettings

__all__ = ["Listeners"]

log = logging.getLogger("fwknop_server")
S = TypeVar("S", bound=Readable)
_SYN_DRAIN = 16  # batches of knocks read before an SPA packet whose stanza needs its SYN


class Listeners:
    """The open capture sources, each read on the loop as packets come."""

    def __init__(self, dispatch: Dispatcher, knocks: Knocks, knock: KnockSettings) -> None:
        self.dispatch = dispatch
        self.knocks = knocks
        self.knock = knock  # the knock settings the listener was opened for
        self._readers: list[Reader[Any]] = []
        self.knock_source: KnockSource | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def source(self) -> Source | None:
        """The SPA capture source, while one is open."""
        return self._readers[0].source if self._readers else None

    def open_spa(self, loop: asyncio.AbstractEventLoop, capture: CaptureSettings) -> Source:
        """Open SPA capture and read it from now on (raises OSError if it cannot open)."""
        self._loop = loop
        source = open_source(capture)
        self._listen(source, self._read_spa)
        return source

    def reopen_spa(self, capture: CaptureSettings) -> None:
        """SIGHUP changed capture: the new source replaces the old, or the old one stays."""
        if self.source is None:
            return
        try:
            source = open_source(capture)
        except OSError as exc:
            log.error("keeping the old capture: %s", exc)
            return
        self._listen(source, self._read_spa, replace=0)
        log.info("capture is now %s", source.description)

    def open_knocks(self, knock: KnockSettings, *, replace: bool = False) -> None:
        """The knock listener, if the stanzas want one (again, with new settings: ``replace``)."""
        self.knock = knock
        wanted = knock.capture_filter
        current = self.knock_source
        if current is not None and current.filter == wanted:
            return
        if current is not None:
            index = next(i for i, r in enumerate(self._readers) if r.source is current)
            old = self._readers.pop(index)
            old.stop()
            current.close()
            self.knock_source = None
        if wanted is None:
            return
        try:
            source = KnockSource(knock.interface, wanted, any_direction=knock.any_direction)
        except OSError as exc:
            if not replace:
                raise
            log.error("knock sequences are not captured: %s", exc)
            return
        self.knocks.refresh_addresses()
        self.knock_source = source
        self._listen(source, self.knocks.read)
        log.info("knock sequences: %d stanza(s), listening: %s", len(knock.sequences),
                 source.description)  # fmt: skip

    def knock_drops(self) -> int:
        """What the kernel dropped from the knock listener's ring since last asked."""
        return self.knock_source.drops() if self.knock_source is not None else 0

    def close(self) -> None:
        """Stop reading and close every source."""
        for reader in self._readers:
            reader.stop()
            reader.source.close()
        self._readers.clear()
        self.knock_source = None

    def _listen(self, source: S, read: Callable[[S], int], *, replace: int = -1) -> None:
        """Read ``source`` with ``read`` from now on (instead of reader ``replace``, closed)."""
        assert self._loop is not None  # noqa: S101 - only while running
        reader = Reader(self._loop, source, read)
        if replace >= 0:
            old = self._readers[replace]
            old.stop()
            old.source.close()
            self._readers[replace] = reader
        else:
            self._readers.append(reader)
        reader.start()

    def _read_spa(self, source: Source) -> int:
        """SPA capture's reader: the knocks that came before first, when a stanza needs a SYN."""
        knocks = self.knock_source
        if knocks is not None and self.knock.spa_filter is not None:
            for _ in range(_SYN_DRAIN):
                if self.knocks.read(knocks) == 0:
                    break
        return self.dispatch.read(source)
