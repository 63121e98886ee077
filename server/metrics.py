"""The opt-in Prometheus endpoint (``METRICS_LISTEN``): the daemon's counters in the text format.

Off unless fwknopd.conf sets ``METRICS_LISTEN``; a bare port listens on
127.0.0.1 only, and an address that is not a loopback one is logged as a
warning at start (anyone who reaches it reads the counters). Served by
prometheus_client's own HTTP server on its thread.

Nothing is counted twice and the packet path pays nothing for metrics: a
scrape asks the event loop for the daemon's snapshot (``status.snapshot``,
what ``--status --json`` prints, taken where the counters change) and
turns it into metric families. The one figure taken as it happens is the
packet -> rule time of each grant (a histogram, observed where the firewall
call ran). A daemon whose loop does not answer within two seconds is shown
as ``fwknopd_up 0``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .vocab import Grant, Reason

__all__ = ["Metrics"]

log = logging.getLogger("fwknop_server")

_ANSWER_WITHIN = 2.0  # seconds the loop has to hand over a snapshot
# packet -> rule: from about a millisecond (in-process nftables) to seconds (GnuPG, commands)
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The daemon's metrics: a registry, the latency histogram, and the HTTP endpoint."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "fwknopd_packet_to_rule_seconds",
            "Time from reading an SPA packet to its firewall rule being in place",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Snapshot(snapshot))
        ProcessCollector(namespace="fwknopd", registry=self.registry)
        self._server: Any = None

    def opened(self, _grant: Grant, seconds: float) -> None:
        """A grant's rule is in place ``seconds`` after its packet was read (any thread)."""
        self.latency.observe(seconds)

    def serve(self, address: str, port: int) -> None:
        """Listen on ``address``:``port`` (``OSError`` if it cannot)."""
        self._server, _thread = start_http_server(port, addr=address, registry=self.registry)
        if not ipaddress.ip_address(address).is_loopback:
            log.warning("metrics on %s:%d, not a loopback address: whoever can reach it reads "
                        "fwknopd's counters", address, port)  # fmt: skip
        log.info("metrics at http://%s/metrics",
                 f"[{address}]:{port}" if ":" in address else f"{address}:{port}")  # fmt: skip

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def on_loop(
    loop: asyncio.AbstractEventLoop, fn: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """``fn`` made callable from another thread: run on ``loop``, its answer waited for."""

    def call() -> dict[str, Any]:
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # handed to the waiting thread, which raises it
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(_ANSWER_WITHIN)

    return call


class _Snapshot(Collector):
    """Metric families from the daemon's snapshot, taken at each scrape."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unchecked: the families depend on the setup (Redis, a group)

    def collect(self) -> Iterator[Metric]:
        try:
            snap = self.snapshot()
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("metrics: the daemon did not answer (%s)", exc or "timeout")
            yield GaugeMetricFamily("fwknopd_up", "Whether the daemon answered", value=0)
            return
        yield GaugeMetricFamily("fwknopd_up", "Whether the daemon answered", value=1)
        info = GaugeMetricFamily("fwknopd_info", "This fwknopd", labels=[
            "version", "firewall", "replay_store"])  # fmt: skip
        info.add_metric([snap["version"], snap["firewall"], snap["replay"]["store"]], 1)
        yield info
        yield CounterMetricFamily("fwknopd_packets", "Packets read from capture (muted ones too)",
                                  value=snap["packets"])  # fmt: skip
        refusals = CounterMetricFamily(
            "fwknopd_refusals", "Packets refused, by reason", labels=["reason"]
        )
        for reason in Reason:
            refusals.add_metric([reason.key], snap["refusals"].get(reason.key, 0))
        yield refusals
        events = CounterMetricFamily(
            "fwknopd_events",
            "Other things counted (grants decided, commands, test mode, internal errors ...)",
            labels=["event"],
        )
        for event, n in sorted(snap["events"].items()):
            events.add_metric([event], n)
        yield events
        grants = CounterMetricFamily(
            "fwknopd_grants",
            "Grants opened, by stanza, firewall backend and origin (local, or the HA group)",
            labels=["stanza", "backend", "origin"],
        )
        for made in snap["grants"]["made"]:
            grants.add_metric([str(made["stanza"]), made["backend"], made["origin"]], made["count"])
        yield grants
        yield GaugeMetricFamily("fwknopd_active_grants", "Grants open now",
                                value=snap["grants"]["active"])  # fmt: skip
        yield CounterMetricFamily("fwknopd_capture_drops",
                                  "Packets the kernel dropped before capture read them",
                                  value=snap["capture_drops"])  # fmt: skip
        knocks = CounterMetricFamily(
            "fwknopd_knock_sequences", "Knock sequences, by outcome", labels=["outcome"]
        )
        for outcome, n in sorted(snap["knocks"].items()):
            knocks.add_metric([outcome], n)
        yield knocks
        yield from _replay(snap["replay"])
        yield from _sync(snap["grant_sync"])


def _replay(replay: dict[str, Any]) -> Iterator[Metric]:
    """The replay cache: its size here; on Redis, whether it is up and what went wrong."""
    entries = GaugeMetricFamily(
        "fwknopd_replay_cache_entries", "Digests in this host's replay cache", labels=["store"]
    )
    entries.add_metric([replay["store"]], replay.get("entries", 0))
    yield entries
    if "up" not in replay:
        return  # not a shared store
    yield GaugeMetricFamily("fwknopd_redis_up", "Whether the shared replay cache is reachable",
                            value=replay["up"])  # fmt: skip
    for name, key, text in (
        ("fwknopd_replay_redis_errors", "errors", "Redis calls of the replay cache that failed"),
        ("fwknopd_replay_local_only", "local_only",
         "Packets checked against this host's cache only, Redis being down"),
        ("fwknopd_replay_refused_unavailable", "refused_down",
         "Packets refused because Redis was down (REPLAY_CACHE_REQUIRED)"),
        ("fwknopd_replay_merged", "merged", "Digests recorded while Redis was down, merged back"),
        ("fwknopd_replay_merge_conflicts", "conflicts",
         "Merged digests another gateway had recorded too (a replay across gateways?)"),
    ):  # fmt: skip
        yield CounterMetricFamily(name, text, value=replay[key])
    yield GaugeMetricFamily("fwknopd_replay_unmerged", "Digests waiting for Redis to come back",
                            value=replay["backlog"])  # fmt: skip


def _sync(sync: dict[str, Any] | None) -> Iterator[Metric]:
    """Grant sharing in the HA group, when there is one."""
    if sync is None:
        return
    for name, key, text in (
        ("fwknopd_grant_sync_published", "published", "Grants made here, shared with the group"),
        ("fwknopd_grant_sync_received", "received", "Grants of other members received"),
        ("fwknopd_grant_sync_redis_errors", "errors", "Redis calls of grant sharing that failed"),
    ):
        yield CounterMetricFamily(name, text, value=sync[key])
    yield GaugeMetricFamily("fwknopd_grant_sync_pending", "Grants waiting for Redis to be shared",
                            value=sync["pending"])  # fmt: skip
