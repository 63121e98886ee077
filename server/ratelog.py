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
from collections import Counter
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
        self.counts: Counter[str] = Counter()
        self._window_start: dict[str, float] = {}
        self._in_window: Counter[str] = Counter()
        self._held: Counter[str] = Counter()

    def count(self, key: str) -> None:
        """Count one event that is never logged."""
        self.counts[key] += 1

    def event(self, key: str, level: int, msg: str, *args: object) -> None:
        """Count one event and log it unless this key is over its rate."""
        self.counts[key] += 1
        now = self.clock()
        start = self._window_start.get(key)
        if start is None or now - start >= self.window:
            if start is not None and self._held[key]:
                self.logger.log(
                    level, "%d more '%s' refusals in the last %.0f s were not logged",
                    self._held[key], key, now - start,
                )  # fmt: skip
                self._held[key] = 0
            self._window_start[key] = now
            self._in_window[key] = 0
        if self._in_window[key] < self.burst:
            self._in_window[key] += 1
            self.logger.log(level, msg, *args)
        else:
            self._held[key] += 1

    def summary(self) -> str:
        """``reason=count`` pairs, most frequent first."""
        return ", ".join(f"{k}={v}" for k, v in self.counts.most_common()) or "nothing yet"
