"""fwknopd speed, ours and the real fwknopd 2.6.10 side by side, on the same config (root).

    python tests/bench/bench_server.py [--knocks N] [--flood-seconds S] [--only ours|c]

For each daemon in both capture modes (sniffing, the default; and the UDP
server), in a network namespace pair of its own:

* packet -> rule: the time from sending a valid packet to the kernel having
  its rule, taken from the kernel's own events (``nft monitor``; fwknopd's
  iptables is iptables-nft here, so its rules show up there too), on the
  monotonic clock the sender used. Median and 90th percentile.
* flood: junk (random base64 of a packet's length, so it reaches the HMAC
  check) at rising rates with a valid packet every 100 ms; the highest rate
  at which no valid packet was lost.
* CPU per 1000 junk packets: the daemon's user+system time over a flood of
  known size, from /proc.
* memory: resident size before, during and after a 10-second flood.

Each daemon runs behind a default-drop input policy of the kind it is made
for: ours on an nftables host (it detects nftables) and on an iptables host,
the C fwknopd on an iptables host (the only firewall it knows).

Goals for ours (default config): packet -> rule <= 2 ms median; no valid
packet lost at >= 100,000 junk pps; <= 8 ms CPU per 1000 junk; RSS flat.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import queue
import random
import re
import socket
import statistics
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fwknop_core import SpaMessage, build_packet, generate_keys
from tests.helpers.cfwknopd import FWKNOPD as C_FWKNOPD
from tests.helpers.netns import (
    CLIENT_IP,
    SERVER_IP,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    stop_process,
)
from tests.helpers.ourd import FWKNOPD as OUR_FWKNOPD
from tests.helpers.ourd import write_private

KEYS = generate_keys()
STANZA = (
    f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\n"
    f"HMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\nFW_ACCESS_TIMEOUT 300\n"
)
B64 = (string.ascii_letters + string.digits + "+/").encode()
GRANTED = re.compile(r"(?:dport |\. (?:tcp|udp) \. )(\d+)")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(ns: str) -> socket.socket:
    """A UDP socket created inside namespace ``ns`` (a thread joins it just for this)."""
    made: list[socket.socket] = []

    def enter() -> None:
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)
        made.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    return made[0]


class Monitor:
    """``nft monitor`` in the server namespace; every granted port with the time it was seen."""

    def __init__(self, pair: NetPair) -> None:
        self.proc = pair.server.popen(
            ["stdbuf", "-oL", "nft", "monitor"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.events: queue.Queue[tuple[int, float]] = queue.Queue()
        self.seen: dict[int, float] = {}
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            text = line.decode(errors="replace")
            if text.startswith("add ") and (m := GRANTED.search(text)):
                self.events.put((int(m.group(1)), now))

    def wait(self, port: int, timeout: float) -> float | None:
        """When ``port`` was granted, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while port not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                granted, at = self.events.get(timeout=left)
            except queue.Empty:
                return None
            self.seen.setdefault(granted, at)
        return self.seen[port]

    def drain(self, settle: float = 1.0) -> set[int]:
        """Every port granted so far (after ``settle`` seconds for stragglers)."""
        time.sleep(settle)
        while True:
            try:
                granted, at = self.events.get_nowait()
            except queue.Empty:
                return set(self.seen)
            self.seen.setdefault(granted, at)

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Daemon:
    """One daemon (ours or C) in one capture mode, in its own namespace pair."""

    name: str
    udp_server: bool
    pair: NetPair
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    port_seq: Iterator[int] = field(default_factory=lambda: iter(range(20000, 65000)))

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = (
            f"PCAP_INTF {self.pair.server_if};\nFWKNOP_RUN_DIR {self.workdir};\n"
            f"FWKNOP_PID_FILE {self.workdir}/fwknopd.pid;\n"
            f"DIGEST_FILE {self.workdir}/digest.cache;\n"
        )
        if self.udp_server:
            conf += "ENABLE_UDP_SERVER Y;\n"
        write_private(self.workdir / "fwknopd.conf", conf)
        write_private(self.workdir / "access.conf", STANZA)
        exe = OUR_FWKNOPD if self.name == "ours" else C_FWKNOPD
        argv = ["taskset", "-c", "0", exe, "-c", str(self.workdir / "fwknopd.conf"),
                "-a", str(self.workdir / "access.conf"), "-f"]  # fmt: skip
        log = (self.workdir / "daemon.log").open("wb")
        self.proc = self.pair.server.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        # fwknopd's UDP server never says "main event loop"; this is its last start-up line
        ready = ("main event loop", "Kicking off UDP server")
        while not any(
            r in (self.workdir / "daemon.log").read_text(errors="replace") for r in ready
        ):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "daemon.log").read_text(errors="replace"))
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def valid_packet(self) -> tuple[int, bytes]:
        port = next(self.port_seq)
        msg = SpaMessage.access_request(CLIENT_IP, f"tcp/{port}", username="bench")
        return port, build_packet(msg, KEYS.rijndael, hmac_key=KEYS.hmac).encode()

    def cpu_seconds(self) -> float:
        """CPU time of every thread, from the scheduler (exact, unlike tick sampling)."""
        assert self.proc is not None
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def junk_packets(count: int = 2048) -> list[bytes]:
    rng = random.Random(7)
    return [b"8" + bytes(rng.choice(B64) for _ in range(203)) for _ in range(count)]


def latency(daemon: Daemon, sock: socket.socket, monitor: Monitor, knocks: int) -> list[float]:
    """Milliseconds from send to rule, for ``knocks`` valid packets 50 ms apart."""
    results = []
    for _ in range(knocks):
        port, packet = daemon.valid_packet()
        sent = time.monotonic()
        sock.sendto(packet, (SERVER_IP, 62201))
        seen = monitor.wait(port, timeout=5)
        if seen is not None:
            results.append((seen - sent) * 1000)
        time.sleep(0.05)
    return results


def flood(
    daemon: Daemon, sock: socket.socket, rate: int, seconds: float, *, junk: list[bytes],
    on_tick: Callable[[], None] | None = None,
) -> tuple[int, list[int]]:  # fmt: skip
    """Junk at ``rate`` pps for ``seconds``, one valid packet every 100 ms; (junk sent, ports)."""
    sent, valid_ports = 0, []
    target = (SERVER_IP, 62201)
    start = time.monotonic()
    next_valid = start
    batch = max(1, rate // 1000)
    n = len(junk)
    while (now := time.monotonic()) - start < seconds:
        if now >= next_valid:
            port, packet = daemon.valid_packet()
            sock.sendto(packet, target)
            valid_ports.append(port)
            next_valid += 0.1
            if on_tick is not None:
                on_tick()
        due = int((now - start) * rate)
        while sent < due:
            for _ in range(min(batch, due - sent)):
                with suppress(BlockingIOError):
                    sock.sendto(junk[sent % n], target)
                sent += 1
    return sent, valid_ports


@contextmanager
def running(
    name: str, host: str, udp: bool, root: Path
) -> Iterator[tuple[Daemon, socket.socket, Monitor]]:
    """``name``'s daemon on a host whose default-drop policy is in ``host`` (nftables/iptables)."""
    with net_pair("bn") as pair:
        policy = drop_policy_nft if host == "nftables" else drop_policy_iptables
        policy(pair.server, allow_udp=[62201] if udp else [])
        daemon = Daemon(name, udp, pair, root / f"{name}-{host}-{'udp' if udp else 'pcap'}")
        monitor = Monitor(pair)
        daemon.start()
        sock = socket_in(pair.client.name)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        try:
            yield daemon, sock, monitor
        finally:
            sock.close()
            daemon.stop()
            monitor.stop()


def measure(
    name: str, host: str, udp: bool, root: Path, args: argparse.Namespace
) -> dict[str, object]:
    out: dict[str, object] = {}
    junk = junk_packets()
    with running(name, host, udp, root) as (daemon, sock, monitor):
        lat = latency(daemon, sock, monitor, args.knocks)
        out["latency"] = lat
        best = 0
        for rate in args.rates:
            sent, ports = flood(daemon, sock, rate, args.flood_seconds, junk=junk)
            granted = monitor.drain()
            lost = len([p for p in ports if p not in granted])
            out[f"flood {rate}"] = (sent, len(ports), lost)
            if lost:
                break
            best = rate
        out["best_rate"] = best
        # CPU per 1000 junk packets under a sustained flood (the goal's case) and a light one
        for rate in (100_000, 10_000):
            cpu0 = daemon.cpu_seconds()
            sent, _ports = flood(daemon, sock, rate, 4.0, junk=junk)
            monitor.drain(settle=0.5)
            out[f"cpu_ms_per_1000 at {rate}"] = (daemon.cpu_seconds() - cpu0) * 1000 / (sent / 1000)
        samples: list[int] = [daemon.rss_kib()]
        flood(daemon, sock, min(100_000, max(best, 1000)), 10.0, junk=junk,
              on_tick=lambda: samples.append(daemon.rss_kib()))  # fmt: skip
        samples.append(daemon.rss_kib())
        out["rss"] = samples
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knocks", type=int, default=40)
    parser.add_argument("--flood-seconds", type=float, default=3.0)
    parser.add_argument("--rates", type=int, nargs="+",
                        default=[1_000, 10_000, 50_000, 100_000, 150_000])  # fmt: skip
    parser.add_argument("--only", choices=["ours", "c"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fwknopd-bench"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes network namespaces")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # senders off core 0
    # each daemon on the host it is made for: ours detects the firewall from the policy,
    # the C fwknopd only knows iptables; ours on iptables too, for a like-for-like row
    setups = [("ours", "nftables"), ("ours", "iptables"), ("c", "iptables")]
    header = f"{'':<24}{'rule median':>12}{'p90':>8}{'no loss at':>14}{'CPU/1000 at 100k':>18}"
    print(f"{header}{'at 10k':>9}{'RSS start/max/end KiB':>26}", flush=True)
    for name, host in setups:
        if args.only and name != args.only:
            continue
        for udp in (False, True):
            label = f"{name}/{host} {'UDP' if udp else 'sniff'}"
            try:
                report(label, measure(name, host, udp, args.workdir, args))
            except (RuntimeError, OSError) as exc:  # one setup failing must not lose the rest
                print(f"{label:<24}failed: {str(exc).splitlines()[-1:]}", flush=True)
    print("\ngoals for ours (sniffing, the default): median <= 2 ms, no loss at >= 100,000 pps, "
          "<= 8 ms CPU per 1000 junk, RSS flat")  # fmt: skip


def report(label: str, r: dict[str, object]) -> None:
    """One row of the table, and the flood details under it."""
    lat = r["latency"]
    assert isinstance(lat, list)
    med = f"{statistics.median(lat):.2f} ms" if lat else "n/a"
    p90 = f"{statistics.quantiles(lat, n=10)[-1]:.1f}" if len(lat) >= 10 else "n/a"
    rss = r["rss"]
    assert isinstance(rss, list)
    hi, lo = r["cpu_ms_per_1000 at 100000"], r["cpu_ms_per_1000 at 10000"]
    print(f"{label:<24}{med:>12}{p90:>8}{r['best_rate']:>10,} pps"
          f"{hi:>15.1f} ms{lo:>6.1f} ms{rss[0]:>12,}/{max(rss):,}/{rss[-1]:,}")  # fmt: skip
    for key, value in r.items():
        if key.startswith("flood"):
            print(f"    {key} pps: sent {value[0]:,} junk, {value[1]} valid, {value[2]} lost")  # type: ignore[index]
    sys.stdout.flush()


if __name__ == "__main__":
    main()
