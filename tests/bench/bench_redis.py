"""The shared replay cache on Redis against the SQLite default: packet -> rule, and junk floods.

    python tests/bench/bench_redis.py [--knocks N] [--rounds R] [--flood-seconds S] [--rate PPS]

Our fwknopd (sniffing, nftables host) in a namespace pair of its own, once
with the default SQLite replay cache and once with ``REPLAY_CACHE_URL`` on a
real redis-server listening on loopback in the daemon's namespace (Debian's
``redis-server``, started for the run, stopped by PID), the two setups taken
in turns (``--rounds``) so that a change of load on a shared host falls on
both. Figures, with the machinery of ``bench_server.py``:

* the store alone: one packet's ``add`` calls (its two digests, as the
  pipeline makes them), packets 50 ms apart, in this process: SQLite, and
  Redis on loopback with SQLite beside it; what Redis's one round trip per
  packet costs without the rest of the daemon around it;
* packet -> rule: from sending a valid packet to the kernel announcing its
  rule (median and 90th percentile per store, and the difference of the
  medians: what the Redis round trip adds; the goal is at most 0.5 ms);
* a junk flood (``--rate``, 100,000 a second by default, random base64 of a
  packet's length, so every one reaches the HMAC check) with a valid packet
  every 100 ms: valid packets lost, and what Redis saw during the flood,
  from its ``INFO commandstats``: SET calls (one per valid packet that
  reached the daemon: its message's digest) and every other command (the
  link thread's check every few seconds; a reconnect after a call timed out
  adds a few), so junk shows as more SETs than valid packets sent (the
  goal: none);
* the load average before and after: compare runs taken under similar load.

The daemon runs on CPU 0, the sender, monitor and redis-server on the last
CPU (``--redis-cpus 0,1``: redis-server on those instead). On a loaded host
the Redis figures are mostly the wait for a CPU to wake redis-server on:
compare rounds, and runs taken under similar load (``--skip-flood`` for
the latency figures alone), or keep that load out with ``--realtime`` (the
knocked daemon and its redis-server run SCHED_FIFO; the floods never do).
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.bench_server import (
    BENCH_CPU,
    Daemon,
    Monitor,
    flood,
    junk_packets,
    latency,
    sender_binary,
    socket_in,
)
from tests.helpers.netns import CLIENT_IP, drop_policy_nft, net_pair
from tests.helpers.redis_server import RedisServer
from tests.helpers.wait import START, LogFile, wait_for

FAILED = re.compile(r"replay cache: Redis at \S+ failed")  # a call of the loop that failed
REDIS_CPUS: set[int] | None = None  # --redis-cpus; by default the benchmark's CPU


def place(pid: int, cpus: set[int] | None, *, realtime: bool = False) -> None:
    """Every thread of ``pid`` on ``cpus`` (if given), and SCHED_FIFO 1 if ``realtime``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if cpus is not None:
            os.sched_setaffinity(int(task.name), cpus)
        if realtime:
            os.sched_setscheduler(int(task.name), os.SCHED_FIFO, os.sched_param(1))


@contextmanager
def running(
    store: str, root: Path, *, realtime: bool = False
) -> Iterator[tuple[Daemon, object, Monitor, RedisServer | None]]:
    """Our fwknopd with ``store`` (sqlite or redis) as its replay cache, in a fresh pair."""
    with net_pair("br") as pair:
        drop_policy_nft(pair.server)
        redis = None
        conf = ""
        if store == "redis":
            redis = RedisServer(root / "redis", ns=pair.server).start()
            assert redis.proc is not None
            place(redis.proc.pid, REDIS_CPUS, realtime=realtime)
            conf = f"REPLAY_CACHE_URL redis://127.0.0.1:{redis.port}/0;\n"
        daemon = Daemon("ours", False, pair, root / f"ours-{store}", conf_extra=conf)
        monitor = Monitor(pair)
        sock = None
        try:
            daemon.start()
            if redis is not None:  # the link thread connects after start-up: measure once it has
                log = LogFile(daemon.workdir / "daemon.log")
                if not log.wait("shared on Redis", timeout=START):
                    raise RuntimeError(f"never connected to Redis:\n{log.text()}")
            if realtime and daemon.proc is not None:
                place(daemon.proc.pid, None, realtime=True)
            sock = socket_in(pair.client.name)
            yield daemon, sock, monitor, redis
        finally:
            if sock is not None:
                sock.close()
            daemon.stop()
            monitor.stop()
            if redis is not None:
                redis.stop()


def store_costs(root: Path, packets: int) -> dict[str, list[float]]:
    """Microseconds one packet's ``add`` calls take in each store, packets 50 ms apart.

    The stores alone, as the pipeline calls them (the message's digest, then
    the text's), in this process: SQLite at a file, and Redis on loopback
    with SQLite beside it. Packets come apart, as knocks do, so each round
    trip finds redis-server asleep and pays for waking it.
    """
    from fwknop_server.replay import ReplaySettings, open_store
    from fwknop_server.replay.redis import SharedReplay
    from fwknop_server.vocab import Packet

    redis = RedisServer(root / "redis-direct").start()
    assert redis.proc is not None
    place(redis.proc.pid, REDIS_CPUS)
    costs: dict[str, list[float]] = {}
    try:
        for store_name, url in (("sqlite", None), ("redis", redis.url())):
            path = root / f"direct-{store_name}.sqlite"
            path.unlink(missing_ok=True)
            store = open_store(ReplaySettings(url=url, path=path, max_age=120))
            assert store is not None
            if isinstance(store, SharedReplay) and not wait_for(lambda: store.up):  # noqa: B023
                raise RuntimeError("never connected to Redis")
            times = costs[store_name] = []
            src = ipaddress.ip_address(CLIENT_IP)
            try:
                for n in range(packets):
                    time.sleep(0.05)
                    packet = Packet(b"x", src, src)
                    expires = time.time() + 120
                    started = time.perf_counter()
                    store.add(f"{n:043d}M", packet, expires)
                    store.add(f"{n:043d}T", packet, expires)
                    times.append((time.perf_counter() - started) * 1e6)
            finally:
                store.close()
    finally:
        redis.stop()
    return costs


def commands(redis: RedisServer) -> tuple[int, int]:
    """(SET calls, all other calls) so far, from INFO commandstats."""
    sets = others = 0
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name = line.split(":", 1)[0][len("cmdstat_") :]
            calls = int(line.split("calls=", 1)[1].split(",", 1)[0])
            if name == "set":
                sets += calls
            elif name != "info":  # our own question
                others += calls
    return sets, others


def latencies(args: argparse.Namespace, root: Path) -> None:
    """The stores alone, then packet -> rule in rounds, each store in turn."""
    costs = store_costs(root, args.knocks * args.rounds)
    for store, times in costs.items():
        med, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        print(f"the store alone, {store:<7} one packet's add: median {med:.0f} us, "
              f"p90 {p90:.0f} us", flush=True)  # fmt: skip
    print(f"Redis's round trip (one per packet, apart) adds "
          f"{statistics.median(costs['redis']) - statistics.median(costs['sqlite']):+.0f} us to "
          "the store's median", flush=True)  # fmt: skip
    rules: dict[str, list[float]] = {"sqlite": [], "redis": []}
    medians: dict[str, list[float]] = {"sqlite": [], "redis": []}
    for round_ in range(args.rounds):
        for store in ("sqlite", "redis"):
            with running(store, root, realtime=args.realtime) as (daemon, sock, monitor, _redis):
                kernel, _printed = latency(daemon, sock, monitor, args.knocks)  # type: ignore[arg-type]
            rules[store] += kernel
            med = statistics.median(kernel) if kernel else float("nan")
            medians[store].append(med)
            print(f"round {round_ + 1} {store:<7} packet -> rule median {med:.3f} ms "
                  f"({len(kernel)} of {args.knocks} knocks)", flush=True)  # fmt: skip
    print(f"\n{'':<8}{'rule median':>12}{'p90':>9}{'knocks':>8}")
    for store, times in rules.items():
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 10 else float("nan")
        print(f"{store:<8}{statistics.median(times):>9.3f} ms{p90:>6.2f} ms{len(times):>8}")
    added = statistics.median(rules["redis"]) - statistics.median(rules["sqlite"])
    paired = [r - s for r, s in zip(medians["redis"], medians["sqlite"], strict=True)]
    print(f"Redis adds {added:+.3f} ms to the median (per round: "
          f"{', '.join(f'{d:+.3f}' for d in paired)} ms); goal <= 0.5 ms", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knocks", type=int, default=40)
    parser.add_argument("--skip-flood", action="store_true")
    realtime = "knocked daemons and their redis-server run SCHED_FIFO (not the floods)"
    parser.add_argument("--realtime", action="store_true", help=realtime)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flood-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fwknopd-bench-redis"))
    parser.add_argument("--redis-cpus", help="CPUs for redis-server, e.g. 0,1 (default: the "
                        "benchmark's CPU)")  # fmt: skip
    args = parser.parse_args()
    if args.redis_cpus:
        global REDIS_CPUS  # noqa: PLW0603 - a setting of this run, read by running()
        REDIS_CPUS = {int(c) for c in args.redis_cpus.split(",")}
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes network namespaces")
    os.sched_setaffinity(0, {BENCH_CPU})
    root = args.workdir
    root.mkdir(parents=True, exist_ok=True)
    junk = root / "junk.txt"
    junk.write_bytes(b"".join(p + b"\n" for p in junk_packets()))
    sender = sender_binary(root)
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    if args.rounds:
        latencies(args, root)
    print()
    for store in () if args.skip_flood else ("sqlite", "redis"):
        with running(store, root) as (daemon, _sock, monitor, redis):
            before = commands(redis) if redis is not None else (0, 0)
            result = flood(daemon, args.rate, args.flood_seconds, junk=junk, sender=sender)
            granted = monitor.drain()
            after = commands(redis) if redis is not None else (0, 0)
        lost = sum(1 for port, _at in result.valid if port not in granted)
        valid = len(result.valid)
        log = (daemon.workdir / "daemon.log").read_text(errors="replace")
        screened = re.findall(r"counters: .*?\bhmac=(\d+)", log)
        line = (f"{store:<8}junk flood {result.rate:,.0f} pps ({result.junk:,} junk, "
                f"{int(screened[-1]) if screened else 0:,} of them screened): "
                f"{valid - lost} of {valid} valid granted, {lost} lost")  # fmt: skip
        if redis is not None:
            sets, others = after[0] - before[0], after[1] - before[1]
            # at most one per valid packet sent (one that reached the daemon); junk: any more
            from_junk = max(0, sets - valid)
            line += (f"; Redis saw {sets} SET for {valid} valid packets sent (from junk: "
                     f"{from_junk}) and {others} other command(s); "
                     f"{len(FAILED.findall(log))} call(s) failed (then decided here)")  # fmt: skip
        print(line, flush=True)
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
