"""Textual's Pilot, made to wait for the app's messages rather than for a quiet CPU.

Pilot (``press``, ``pause``, ``click``) decides the app is idle when the
test process used little CPU during a 20 ms sleep
(``textual._wait.wait_for_idle``). On a loaded machine the process may just
not have been scheduled in those 20 ms: Pilot goes on while messages are
still queued, and a key pressed next reaches the widget that had the focus
before (``/`` then ``wire`` filtered on ``ire``). ``settled_idle`` does what
Textual does, then waits until no message queue of the app and its screens
holds anything, twice in a row: the event the heuristic stands for. It is
bounded (``DEADLINE``): a handler waiting for a dialog holds no queue, and a
timer that keeps posting would only make the wait end at the deadline.

``use_settled_idle(monkeypatch)`` installs it for Pilot; tests/tui/conftest.py
does so for every TUI test.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import textual.app
import textual.pilot
from textual._context import active_app
from textual._wait import wait_for_idle as textual_wait_for_idle

from .wait import DEADLINE

__all__ = ["settled_idle", "use_settled_idle"]

_CALM = 2  # consecutive looks at empty queues
_LOOK = 0.005  # seconds between looks (timers and awaited handlers run meanwhile)


def _queued(app: Any) -> bool:
    """Whether the app or a node of one of its screens has a message waiting."""
    if app.message_queue_size:
        return True
    return any(
        node.message_queue_size
        for screen in app.screen_stack
        for node in screen.walk_children(with_self=True)
    )


async def settled_idle(min_sleep: float = 1 / 50, max_sleep: float = 1) -> None:
    """Textual's idle wait, then until the app's message queues stay empty (bounded)."""
    await textual_wait_for_idle(min_sleep, max_sleep)
    try:
        app = active_app.get()
    except LookupError:
        return
    deadline = time.monotonic() + DEADLINE
    calm = 0
    while calm < _CALM and time.monotonic() < deadline:
        calm = 0 if _queued(app) else calm + 1
        await asyncio.sleep(_LOOK)


def use_settled_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make Pilot (and the app's key presses) wait with ``settled_idle``."""
    monkeypatch.setattr(textual.pilot, "wait_for_idle", settled_idle)
    monkeypatch.setattr(textual.app, "wait_for_idle", settled_idle)
