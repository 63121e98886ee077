"""When the TUI's cyclic garbage collector runs: never while a screen is being built.

CPython collects after a count of allocations, wherever they happen. Starting
the app, or building a dialog (hundreds of widgets, their styles and strips),
allocates enough for dozens of collections, and some are full ones that walk
every object of the process (Textual's, Rich's, every module's), although
nothing made so far is garbage yet: a large share of the first frame's time
and of a dialog's opening time. So, for the ``fwknop-tui`` process (``run``):

* the collector is off from the start until the first frame is on screen;
  then everything made so far is frozen (``gc.freeze``: the start-up heap,
  which lives as long as the app, is never walked again) and it is on;
* a dialog holds it off from the key that opens it until it is on screen
  (``hold`` / ``release``, counted; a dialog that closes first releases
  too), so what was left by the last one is collected afterwards, in a
  pause, not while the next one is built.

Apps made any other way (tests) never touch the collector: ``Collector``
does nothing unless ``manage()`` was called.
"""

from __future__ import annotations

import gc

__all__ = ["Collector"]


class Collector:
    """The process's collector, held off while the app builds what a key asked for."""

    def __init__(self) -> None:
        self.managed = False
        self._running = False  # the first frame is up
        self._holds: set[object] = set()

    def manage(self) -> None:
        """Take the collector over: off until ``started``."""
        self.managed = True
        gc.disable()

    def started(self) -> None:
        """The first frame is up: freeze what exists, then collect as usual."""
        if not self.managed:
            return
        gc.freeze()
        self._running = True
        if not self._holds:
            gc.enable()

    def hold(self, token: object) -> None:
        """No collection until ``release(token)``."""
        if self.managed:
            self._holds.add(token)
            gc.disable()

    def release(self, token: object) -> None:
        """``token``'s hold ends; the collector runs again when no other is left."""
        if token in self._holds:
            self._holds.discard(token)
            if self._running and not self._holds:
                gc.enable()
