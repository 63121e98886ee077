"""Counting every refusal and logging them without letting a flood fill the disk.

Each refusal is counted by reason. Log lines (source address and reason,
what fail2ban and friends read) are limited per reason: ``burst`` lines per
``window`` seconds, then one summary of how many were held back. The
decision costs a dict update and a clock read, so a flood cannot slow the
packet path through its logging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Counters by reason, and at most ``burst`` log lines per reason per ``window``."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 20,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.window = window
        self.clock = clock
        self.counts: dict[str, int] = {}  # plain dict: counted for every packet of a flood
        self._state: dict[str, list[float]] = {}  # key -> [window start, logged, held back]

    def count(self, key: str, n: int = 1) -> None:
        """Count ``n`` events that are never logged."""
        counts = self.counts
        counts[key] = counts.get(key, 0) + n

    def hold(self, key: str, n: int) -> None:
        """Count ``n`` events of a key that ``admit`` just turned down: held back, summarised later.

        For a caller with a batch of the same refusal: once one is over the
        rate, the rest of the batch is too (a window lasts seconds, a batch microseconds).
        """
        counts = self.counts
        counts[key] = counts.get(key, 0) + n
        state = self._state.get(key)
        if state is not None:
            state[2] += n

    def event(self, key: str, level: int, msg: str, *args: object) -> None:
        """Count one event and log it unless this key is over its rate."""
        if self.admit(key, level):
            self.logger.log(level, msg, *args)

    def admit(self, key: str, level: int = logging.WARNING) -> bool:
        """Count one event; whether it may be logged (so callers format only what is logged)."""
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        now = self.clock()
        state = self._state.get(key)
        if state is None or now - state[0] >= self.window:
            state = self._new_window(key, level, now, state)
        if state[1] < self.burst:
            state[1] += 1
            return True
        state[2] += 1
        return False

    def _new_window(self, key: str, level: int, now: float, old: list[float] | None) -> list[float]:
        if old is not None and old[2]:
            self.logger.log(
                level, "%d more '%s' refusals in the last %.0f s were not logged",
                old[2], key, now - old[0],
            )  # fmt: skip
        state = self._state[key] = [now, 0, 0]
        return state

    def summary(self) -> str:
        """``reason=count`` pairs, most frequent first."""
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k}={v}" for k, v in ranked) or "nothing yet"
