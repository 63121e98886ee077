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


def test_a_batch_held_back_in_one_go_is_counted_and_summarised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    rl = RateLimitedLog(logging.getLogger("t.rl2"), burst=2, window=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "t.rl2"):
        assert [rl.admit("hmac") for _ in range(3)] == [True, True, False]
        rl.hold("hmac", 500)  # the rest of a flood's batch, over the rate like the third
        rl.count("too_short", 40)
        now[0] = 10.0
        assert rl.admit("hmac")
    assert rl.counts == {"hmac": 504, "too_short": 40}
    assert [r.getMessage() for r in caplog.records] == [
        "501 more 'hmac' refusals in the last 10 s were not logged"
    ]
