"""fwknopd under a flood of junk SYNs to its knock ports: SPA and a knock sequence still open.

    python tests/bench/bench_knock_flood.py [--rates 100000 ...] [--seconds 10]
                                            [--hosts nftables iptables] [--knocks N]

Our fwknopd (sniffing, the default) with an SPA stanza, an encrypted and a
shared knock-sequence stanza, behind a default-drop policy, in a namespace
pair of its own. ``flood.c`` (raw mode) sends junk SYNs at the asked rate
from random spoofed sources (10.0.0.0/8) to random ports of the encrypted
stanza's 256-port range (61000-61255), the knock listener's worst case: its
kernel filter passes them all, and one in 256 lands on a sequence's first
port. Meanwhile, from the client's own address:

* a valid SPA packet every 100 ms (raw UDP datagrams, sent by the same
  sender between its batches): how many were granted, and their packet ->
  rule time (``nft monitor``; the kernel's event where it confirms), against
  the same without the flood;
* half-way through, a valid encrypted sequence (32 SYNs 5 ms apart) and then
  a shared one: whether each opened, and the time from its last knock to
  its rule;
* the daemon's resident memory during and after the flood, its CPU per
  1000 junk SYNs, its knock counters after the flood (SIGUSR1: screened
  junk, knocks, retransmissions dropped, sources with state), and what the
  veth link dropped before any capture. The junk is 65,536 distinct SYNs,
  sent round and round: a SYN seen again is a retransmission to the listener.

Then the same with the SPA stanza alone (no knock listener: the SYNs reach
no capture of the daemon), the baseline: what the flood costs SPA on this
machine whatever the daemon does, against what knock collection adds. All
times are ``nft monitor``'s (its reader runs on the sender's CPU).

The daemon runs on CPU 0, the sender and this script on the last CPU. The
load average before and after is printed: on a shared host, compare runs
taken under similar load. This is a benchmark, not a test: it asserts
nothing. Goals (issue 14): every valid SPA packet still granted within the
usual couple of milliseconds at 100,000 junk SYNs a second, memory flat,
the sequence sent during the flood opens.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fwknop_core import KnockKey, KnockRequest, build_knock_sequence
from tests.bench.bench_server import (
    BENCH_CPU,
    STANZA,
    Daemon,
    Monitor,
    latency,
    link_drops,
    running,
    sender_binary,
    socket_in,
)
from tests.helpers import packets as pk
from tests.helpers.netns import CLIENT_IP, SERVER_IP

OFFSET = 61000
KNOCK_KEY = "bench-knock-key"
SEQUENCE_PORT, SHARED_PORT = 2222, 2223
SHARED_STEPS = (5501, 5502, 5503)
STANZAS = STANZA + (
    # closed again before the next flood's sequences (each flood waits for the daemon to idle)
    f"SOURCE ANY\nENCRYPT_SEQUENCE Y\nKEY {KNOCK_KEY}\nOPEN_PORTS tcp/{SEQUENCE_PORT}\n"
    "FW_ACCESS_TIMEOUT 3\n"
    f"SOURCE ANY\nSHARED_SEQUENCE {', '.join(f'tcp/{p}' for p in SHARED_STEPS)}\n"
    f"OPEN_PORTS tcp/{SHARED_PORT}\nFW_ACCESS_TIMEOUT 3\n"
)


def junk_syns(count: int = 65536) -> list[bytes]:
    """SYNs with Linux's options from random 10.0.0.0/8 sources to random knock-range ports."""
    rng = random.Random(11)
    syns = []
    for _ in range(count):
        src = str(ipaddress.IPv4Address((10 << 24) + rng.randrange(1, 1 << 24)))
        port, sport = OFFSET + rng.randrange(256), rng.randrange(1024, 65536)
        syns.append(pk.tcp_syn(src, SERVER_IP, port, sport=sport, seq=rng.randrange(1 << 32)))
    return syns


@dataclass
class Sequences:
    """The two sequences sent during the flood: when their last knock went, when they opened."""

    sent: dict[int, float] = field(default_factory=dict)  # granted port -> last knock's time

    def send(self, pair_client: str, at: float) -> None:
        """At ``at`` (monotonic), the encrypted sequence, then the shared one, from the client."""
        sock = socket_in(pair_client, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        time.sleep(max(0.0, at - time.monotonic()))
        request = KnockRequest(CLIENT_IP, 6, SEQUENCE_PORT)
        ports = build_knock_sequence(request, KnockKey.from_passphrase(KNOCK_KEY), offset=OFFSET)
        for group, granted in ((ports, SEQUENCE_PORT), (SHARED_STEPS, SHARED_PORT)):
            for i, port in enumerate(group):
                syn = pk.tcp_syn(CLIENT_IP, SERVER_IP, port, sport=30000 + i)
                sock.sendto(syn, (SERVER_IP, 0))
                self.sent[granted] = time.monotonic()
                time.sleep(0.005)
        sock.close()


@dataclass
class Run:
    """One flood's figures."""

    rate: int
    junk: int = 0
    seconds: float = 0.0
    errors: int = 0
    link_drops: int = 0
    valid: list[tuple[int, float]] = field(default_factory=list)  # SPA port, send time
    granted: dict[int, float] = field(default_factory=dict)  # port -> when nft monitor saw it
    sequences: Sequences = field(default_factory=Sequences)
    rss: list[int] = field(default_factory=list)
    cpu_ms: float = 0.0
    counters: str = ""  # the daemon's knock counters after the flood (SIGUSR1)

    @property
    def achieved(self) -> float:
        """The junk rate the sender reached."""
        return self.junk / self.seconds if self.seconds > 0 else 0.0


def flood(
    daemon: Daemon, monitor: Monitor, rate: int, seconds: float, *, sender: Path, stanzas: str
) -> Run:
    """Junk SYNs at ``rate`` for ``seconds``, SPA every 100 ms, the sequences half-way."""
    run = Run(rate)
    workdir = daemon.workdir
    junk = workdir / "junk-syn.hex"
    if not junk.exists():
        junk.write_text("".join(p.hex() + "\n" for p in junk_syns()))
    valid = [daemon.valid_packet() for _ in range(int(seconds * 10) + 1)]
    valid_file = workdir / "valid-raw.hex"
    valid_file.write_text("".join(
        pk.udp(CLIENT_IP, SERVER_IP, 62201, packet, sport=40000 + i).hex() + "\n"
        for i, (_port, packet) in enumerate(valid)
    ))  # fmt: skip
    daemon.wait_idle()
    cpu0, drops0 = daemon.cpu_seconds(), link_drops(daemon.pair)
    argv = ["taskset", "-c", str(BENCH_CPU), str(sender), SERVER_IP, "raw", str(rate),
            str(seconds), str(junk), str(valid_file), "100"]  # fmt: skip
    started = time.monotonic()
    proc = daemon.pair.client.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    knocker = threading.Thread(
        target=run.sequences.send, args=(daemon.pair.client.name, started + seconds / 2)
    )
    if stanzas is STANZAS:
        knocker.start()
    run.rss.append(daemon.rss_kib())
    while proc.poll() is None:
        run.rss.append(daemon.rss_kib())
        time.sleep(0.2)
    if knocker.ident is not None:
        knocker.join()
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"flood sender: {err.decode(errors='replace').strip()}")
    daemon.wait_idle()
    run.cpu_ms = (daemon.cpu_seconds() - cpu0) * 1000
    run.link_drops = link_drops(daemon.pair) - drops0
    for line in out.decode().splitlines():
        key, _, value = line.partition(" ")
        if key == "valid":
            index, when = value.split()
            run.valid.append((valid[int(index)][0], float(when)))
        elif key in ("junk", "errors"):
            setattr(run, key, int(value))
        elif key == "seconds":
            run.seconds = float(value)
    run.counters = knock_counters(daemon)
    monitor.drain()
    run.granted = dict(monitor.seen)
    time.sleep(1.0)
    run.rss.append(daemon.rss_kib())
    return run


def knock_counters(daemon: Daemon) -> str:
    """The counters the daemon logs on SIGUSR1: its own (knock_kernel_dropped: what the knock
    ring had no room for) and the collector's (sources with state among them)."""
    log = daemon.workdir / "daemon.log"
    seen = log.read_text(errors="replace").count("knock counters: ")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()
        knocks = [i for i, x in enumerate(lines) if "knock counters: " in x]
        if len(knocks) > seen:
            last = knocks[-1]
            own = lines[last - 1].split("counters: ", 1)[-1] if last else ""
            return f"{own}\n      {lines[last].split('knock counters: ', 1)[1]}"
        time.sleep(0.1)
    return "(not logged)"


def report(label: str, quiet: list[float], runs: list[Run], knocks: bool) -> None:
    """What the runs of one setup measured (``knocks``: it has the sequence stanzas)."""
    med = f"{statistics.median(quiet):.2f} ms" if quiet else "n/a"
    print(f"{label}: SPA packet -> rule without a flood: median {med} ({len(quiet)} packets)")
    for run in runs:
        under = [(run.granted[p] - at) * 1000 for p, at in run.valid if p in run.granted]
        lost = len(run.valid) - len(under)
        spa = (
            f"median {statistics.median(under):.2f} ms, p90 "
            f"{statistics.quantiles(under, n=10)[-1]:.2f} ms"
            if len(under) >= 10
            else "n/a"
        )
        print(
            f"  {run.rate:,} junk SYN/s asked: achieved {run.achieved:,.0f}/s ({run.junk:,} in "
            f"{run.seconds:.2f} s, {run.errors} send errors, link dropped {run.link_drops:,})"
        )
        print(f"    SPA: {len(run.valid)} valid packets, {lost} lost; packet -> rule {spa}")
        for name, port in (("encrypted", SEQUENCE_PORT), ("shared", SHARED_PORT)) * knocks:
            last = run.sequences.sent.get(port)
            seen = run.granted.get(port)
            took = (
                f"opened {(seen - last) * 1000:.1f} ms after its last knock"
                if last is not None and seen is not None
                else "NOT opened"
            )
            print(f"    {name} sequence sent during the flood: {took}")
        if knocks:
            print(f"    counters after it: {run.counters}")
        print(
            f"    CPU {run.cpu_ms / max(run.junk / 1000, 0.001):.2f} ms per 1000 junk SYNs; "
            f"RSS start/max/end {run.rss[0]:,}/{max(run.rss):,}/{run.rss[-1]:,} KiB"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--knocks", type=int, default=20, help="SPA packets timed without a flood")
    parser.add_argument("--hosts", nargs="+", choices=["nftables", "iptables"],
                        default=["nftables"])  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fwknopd-bench-knock"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes network namespaces")
    os.sched_setaffinity(0, {BENCH_CPU})
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    sender = sender_binary(args.workdir)
    for host in args.hosts:
        for label, stanzas in (("knock stanzas", STANZAS), ("SPA stanza only", STANZA)):
            root = args.workdir / f"{host}-{'knocks' if stanzas is STANZAS else 'spa'}"
            with running("ours", host, False, root, stanzas, conf="") as (daemon, sock, monitor):
                # nft monitor's times, as under the flood (the kernel's events cannot tell
                # one grant from another there)
                _kernel, quiet = latency(daemon, sock, monitor, args.knocks)
                runs = []
                for rate in args.rates:
                    monitor.seen.pop(SEQUENCE_PORT, None)  # the last run's (closed by now)
                    monitor.seen.pop(SHARED_PORT, None)
                    runs.append(
                        flood(daemon, monitor, rate, args.seconds, sender=sender, stanzas=stanzas)
                    )
                report(f"{host}, {label}", quiet, runs, stanzas is STANZAS)
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
