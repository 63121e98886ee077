"""Periodic tasks on the event loop that survive their own failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

__all__ = ["every"]

log = logging.getLogger("fwknop_server")


def every(
    loop: asyncio.AbstractEventLoop,
    seconds: float,
    fn: Callable[[], None],
    what: str,
    running: Callable[[], bool],
) -> None:
    """Call ``fn`` every ``seconds`` while ``running()``, whatever it raises.

    A failure is logged once (and the recovery once), not every round: the
    task is tried again at its next round until it works. Once ``running()``
    is false the task stops: what it works on may be closed already.
    """
    failing = False

    def tick() -> None:
        nonlocal failing
        if not running():
            return
        try:
            fn()
        except Exception as exc:  # a periodic task survives its own failures
            if not failing:
                log.error("%s failed (%s: %s); trying again every %.0f s",
                          what, type(exc).__name__, exc, seconds)  # fmt: skip
            failing = True
        else:
            if failing:
                log.info("%s works again", what)
            failing = False
        loop.call_later(seconds, tick)

    loop.call_later(seconds, tick)
