"""The metrics families of a snapshot, and the capture-drop counter every reader shares.

The end-to-end tests (test_metrics_e2e.py, test_fleet_e2e.py) scrape real
daemons; these cover what a test daemon cannot be made to do on demand (the
kernel dropping packets before capture, knock sequences), still checked by
the real ``promtool``.
"""

from __future__ import annotations

import logging
from typing import Any

from fwknop_server.metrics import Metrics
from fwknop_server.ratelog import RateLimitedLog
from fwknop_server.status import capture_drops
from prometheus_client import generate_latest

from tests.helpers.metrics import promtool_check, sample


class _Ring:
    """A capture source whose kernel count resets when read, as PACKET_STATISTICS does."""

    def __init__(self, *batches: int) -> None:
        self.batches = list(batches)

    def drops(self) -> int:
        return self.batches.pop(0) if self.batches else 0


def test_capture_drops_only_grow_whoever_reads_them() -> None:
    refusals = RateLimitedLog(logging.getLogger("test"))
    ring = _Ring(5, 3, 0)
    assert capture_drops(ring, refusals) == 5  # a scrape
    assert capture_drops(ring, refusals) == 8  # SIGUSR1: what the scrape read is not lost
    assert capture_drops(ring, refusals) == 8
    assert refusals.counts["kernel_dropped"] == 8
    assert capture_drops(object(), refusals) == 8  # a source that cannot tell (a pcap file)


def _snapshot(**changes: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "version": "0.0",
        "firewall": "nftables",
        "packets": 12,
        "refusals": {"hmac": 3},
        "events": {},
        "grants": {"active": 1, "made": [
            {"stanza": 1, "origin": "local", "backend": "nftables", "count": 2}]},
        "capture_drops": 0,
        "replay": {"store": "sqlite", "entries": 4},
        "grant_sync": None,
        "knocks": {},
    }  # fmt: skip
    snap.update(changes)
    return snap


def test_capture_drops_and_knock_sequences_are_exposed() -> None:
    snap = _snapshot(capture_drops=8, knocks={"granted": 2, "refused": 5})
    text = generate_latest(Metrics(lambda: snap).registry).decode()
    promtool_check(text)
    assert sample(text, "fwknopd_capture_drops_total") == 8
    assert sample(text, "fwknopd_knock_sequences_total", outcome="granted") == 2
    assert sample(text, "fwknopd_knock_sequences_total", outcome="refused") == 5
    assert sample(text, "fwknopd_packets_total") == 12
    assert sample(text, "fwknopd_refusals_total", reason="hmac") == 3
