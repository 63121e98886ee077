"""Refusals are all counted, and logged at a bounded rate per reason."""

from __future__ import annotations

import logging

import pytest
from fwknop_server.ratelog import RateLimitedLog


def test_bursts_are_logged_then_held_back_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rl = RateLimitedLog(logging.getLogger("t.rl"), burst=3, window=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "t.rl"):
        for i in range(100):
            rl.event("hmac", logging.WARNING, "refused %d", i)
        rl.event("replay", logging.WARNING, "replay")
        now[0] = 11.0
        rl.event("hmac", logging.WARNING, "refused late")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "refused 0",
        "refused 1",
        "refused 2",
        "replay",
        "97 more 'hmac' refusals in the last 11 s were not logged",
        "refused late",
    ]
    assert rl.counts == {"hmac": 101, "replay": 1}
    rl.count("too_short")
    assert rl.summary() == "hmac=101, replay=1, too_short=1"
