"""fwknopd speed, ours and the real fwknopd 2.6.10 side by side, on the same config (root).

    python tests/bench/bench_server.py [--knocks N] [--flood-seconds S] [--only ours|c]
                                       [--hosts nftables iptables] [--modes sniff udp nfq]

For each daemon in both capture modes (sniffing, the default; and the UDP
server; ``nfq``, asked for by name: ours reading NFQUEUE, which the Debian
build of fwknopd lacks), in a network namespace pair of its own:

* packet -> rule: the time from sending a valid packet to the kernel having
  its rule, taken from the kernel's own events on the monotonic clock the
  sender used: the first new rule or set element the kernel announces on
  its nf_tables netlink group, confirmed by ``nft monitor`` naming the port
  (fwknopd's iptables is iptables-nft here, so its rules show up there
  too). Median and 90th percentile; ``nft monitor``'s own median is shown
  too (it is later by the time it takes to decode and print the event).
* flood: junk (random base64 of a packet's length, so it reaches the HMAC
  check) at rising rates with a valid packet every 100 ms; the highest rate
  at which no valid packet was lost (as the sender achieved it). The flood
  comes from ``flood.c`` (compiled here with gcc; sendmmsg, paced on the
  monotonic clock): a Python sender cost more CPU per packet than the
  daemon it measured and could not keep 100,000 a second on two cores.
  Each flood line states the rate actually achieved, how late the valid
  packets went out, their packet -> rule time under the flood, and what
  the kernel dropped on the link (veth) before any daemon saw it.
* CPU per 1000 junk packets: the daemon's user+system time over a flood of
  known size, from /proc (from an idle daemon until it is idle again).
* memory: resident size before, during and after a 10-second flood.
* ``--gnupg-flood``, instead of the above: a GnuPG stanza without an HMAC
  key beside the knocks' stanza, so every GnuPG-sized packet must go to gpg
  to be judged; GnuPG-sized junk at ``--gnupg-rate`` (1,000) a second with a
  valid Rijndael knock every 100 ms: the knocks' packet -> rule times and
  losses under that flood, the CPU of the daemon and of the gpg processes it
  ran, and its counters (our fwknopd's GnuPG workers take what they can and
  refuse the rest as ``gpg_busy``).

The daemon runs on CPU 0, everything of the benchmark's (sender, monitor,
this script, and the kernel's receive work for the sender's packets) on the
last CPU. The load average before and after is printed: on a shared host,
compare runs taken under similar load.

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
import json
import os
import queue
import random
import re
import signal
import socket
import statistics
import string
import struct
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
from tests.helpers.gpghome import build_homes
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
from tests.helpers.vectors import CLIENT_GPG_KEY, SERVER_GPG_KEY

KEYS = generate_keys()
STANZA = (
    f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\n"
    f"HMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\nFW_ACCESS_TIMEOUT 300\n"
)
# --stanzas full: the knocks' stanza first, then a NAT and a GnuPG stanza (keys of their
# own) that every packet's source matches too: junk is screened against each of them
FULL_CONF = "ENABLE_IPT_FORWARDING Y;\nENABLE_IPT_LOCAL_NAT Y;\n"


def gnupg_stanzas(gnupg: Path) -> str:
    """STANZA, then a GnuPG stanza for any source with no HMAC key: gpg judges GnuPG junk."""
    return STANZA + (
        f"SOURCE ANY\nGPG_HOME_DIR {gnupg}\nGPG_DECRYPT_ID {SERVER_GPG_KEY}\n"
        f"GPG_ALLOW_NO_PW Y\nGPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}\n"
    )


def full_stanzas(gnupg: Path) -> str:
    """STANZA, then a FORCE_NAT stanza and a GnuPG stanza (with an HMAC key) for any source."""
    nat, gpg = generate_keys(), generate_keys()
    nat_stanza = (
        f"SOURCE ANY\nKEY_BASE64 {nat.rijndael.to_base64()}\n"
        f"HMAC_KEY_BASE64 {nat.hmac.to_base64()}\nFORCE_NAT 198.51.100.2 22\n"
    )
    gpg_stanza = (
        f"SOURCE ANY\nGPG_HOME_DIR {gnupg}\nGPG_DECRYPT_ID {SERVER_GPG_KEY}\n"
        f"GPG_ALLOW_NO_PW Y\nGPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}\n"
        f"HMAC_KEY_BASE64 {gpg.hmac.to_base64()}\n"
    )
    return STANZA + nat_stanza + gpg_stanza


B64 = (string.ascii_letters + string.digits + "+/").encode()
GRANTED = re.compile(r"(?:dport |\. (?:tcp|udp) \. )(\d+)")
_CLONE_NEWNET = 0x40000000
_NETLINK_NETFILTER, _SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, _NFNLGRP_NFTABLES = 12, 270, 1, 7
_NFT_NEWRULE, _NFT_NEWSETELEM = 0x0A06, 0x0A0C  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*
SENDER_SOURCE = Path(__file__).with_name("flood.c")
BENCH_CPU = (os.cpu_count() or 1) - 1  # the benchmark's own processes; the daemon gets CPU 0
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM, proto: int = 0
) -> socket.socket:
    """A socket created inside namespace ``ns`` (a thread joins it just for this)."""
    made: list[socket.socket] = []

    def enter() -> None:
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)
        made.append(socket.socket(family, kind, proto))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    return made[0]


class KernelEvents:
    """The kernel's nf_tables notifications, timed on arrival by a thread that does nothing else.

    ``nft monitor`` says which port was granted, but it prints each event
    only after decoding it (and asking the kernel about the set), and its
    line then crosses a pipe to a reader thread: on this machine that adds
    about 0.2 ms to every figure. The time a grant took is taken from here
    instead: the first rule or set element the kernel announces after the
    packet was sent (knocks go one at a time, and ``nft monitor`` confirms
    the port).
    """

    def __init__(self, pair: NetPair) -> None:
        self.sock = socket_in(
            pair.server.name, socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER
        )
        self.sock.bind((0, 0))
        self.sock.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, _NFNLGRP_NFTABLES)
        self.times: list[float] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            now = time.monotonic()
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind in (_NFT_NEWRULE, _NFT_NEWSETELEM):
                    self.times.append(now)
                if length < 16:
                    break
                offset += (length + 3) & ~3

    def first_after(self, moment: float) -> float | None:
        """When the kernel first announced a new rule or element after ``moment``."""
        return next((t for t in self.times if t > moment), None)

    def stop(self) -> None:
        self.sock.close()


class Monitor:
    """``nft monitor`` in the server namespace; every granted port with the time it was seen."""

    def __init__(self, pair: NetPair) -> None:
        self.proc = pair.server.popen(
            ["stdbuf", "-oL", "nft", "monitor"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.events: queue.Queue[tuple[int, float]] = queue.Queue()
        self.seen: dict[int, float] = {}
        self.kernel = KernelEvents(pair)
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
        self.kernel.stop()


@dataclass
class Daemon:
    """One daemon (ours or C) in one capture mode, in its own namespace pair."""

    name: str
    udp_server: bool
    pair: NetPair
    workdir: Path
    stanzas: str = STANZA  # access.conf
    conf_extra: str = ""
    nfq: bool = False  # ENABLE_NFQ_CAPTURE (ours)
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
        if self.nfq:
            conf += "ENABLE_NFQ_CAPTURE Y;\n"
        write_private(self.workdir / "fwknopd.conf", conf + self.conf_extra)
        write_private(self.workdir / "access.conf", self.stanzas)
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
        """CPU time of every thread, from the scheduler (exact, unlike tick sampling).

        Only the threads alive now: see ``process_cpu`` for a daemon whose
        threads come and go.
        """
        assert self.proc is not None
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def process_cpu(self) -> tuple[float, float]:
        """CPU seconds of the process (every thread, ended ones too) and of its ended children.

        From /proc/PID/stat, in clock ticks: coarser than ``cpu_seconds``,
        but it counts python-gnupg's short-lived threads and the gpg
        processes the daemon has waited for.
        """
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        own = (int(fields[11]) + int(fields[12])) / tick
        children = (int(fields[13]) + int(fields[14])) / tick
        return own, children

    def wait_idle(self, quiet: float = 0.3, limit: float = 20.0) -> None:
        """Until the daemon has used (almost) no CPU for ``quiet`` seconds: its backlog is done."""
        deadline = time.monotonic() + limit
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.cpu_seconds()
            if now - last < 0.005:
                return
            last = now

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def junk_packets(count: int = 2048, length: int = 204) -> list[bytes]:
    rng = random.Random(7)
    return [b"8" + bytes(rng.choice(B64) for _ in range(length - 1)) for _ in range(count)]


def latency(
    daemon: Daemon, sock: socket.socket, monitor: Monitor, knocks: int
) -> tuple[list[float], list[float]]:
    """Milliseconds from send to rule for ``knocks`` valid packets 50 ms apart: by the kernel's
    event, and by ``nft monitor``'s line."""
    kernel, printed = [], []
    for _ in range(knocks):
        port, packet = daemon.valid_packet()
        sent = time.monotonic()
        sock.sendto(packet, (SERVER_IP, 62201))
        seen = monitor.wait(port, timeout=5)
        if seen is not None:
            printed.append((seen - sent) * 1000)
            announced = monitor.kernel.first_after(sent)
            if announced is not None and announced <= seen:
                kernel.append((announced - sent) * 1000)
        time.sleep(0.05)
    return kernel, printed


@dataclass
class Flood:
    """What one flood did: junk sent, over how long, and each valid packet's port and send time."""

    junk: int
    seconds: float
    errors: int
    valid: list[tuple[int, float]]
    link_drops: int

    @property
    def rate(self) -> float:
        """The junk rate achieved, packets per second."""
        return self.junk / self.seconds if self.seconds > 0 else 0.0


def sender_binary(workdir: Path) -> Path:
    """``flood.c`` compiled (again when the source is newer than the binary)."""
    binary = workdir / "flood"
    if not binary.exists() or binary.stat().st_mtime < SENDER_SOURCE.stat().st_mtime:
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(SENDER_SOURCE)], check=True)
    return binary


def link_drops(pair: NetPair) -> int:
    """Packets the veth pair dropped so far (client transmit + server receive)."""
    total = 0
    for ns, ifname, kind in (
        (pair.client, pair.client_if, "tx"),
        (pair.server, pair.server_if, "rx"),
    ):
        res = ns.run(["ip", "-j", "-s", "link", "show", "dev", ifname], check=False)
        with suppress(ValueError, LookupError, TypeError):
            total += int(json.loads(res.stdout)[0]["stats64"][kind]["dropped"])
    return total


def socket_drops(pair: NetPair) -> int:
    """UDP datagrams the server's kernel dropped for a full socket buffer (UDP and UDP6)."""
    total = 0
    for path, key in (("/proc/net/snmp", "Udp:"), ("/proc/net/snmp6", "Udp6RcvbufErrors")):
        lines = pair.server.run(["cat", path], check=False).stdout.decode().splitlines()
        if key == "Udp:":
            rows = [line.split() for line in lines if line.startswith("Udp:")]
            if len(rows) >= 2 and "RcvbufErrors" in rows[0]:
                total += int(rows[1][rows[0].index("RcvbufErrors")])
        else:
            total += sum(int(line.split()[1]) for line in lines if line.startswith(key))
    return total


def flood(
    daemon: Daemon, rate: int, seconds: float, *, junk: Path, sender: Path,
    on_tick: Callable[[], None] | None = None, knocks: bool = True,
) -> Flood:  # fmt: skip
    """Junk at ``rate`` pps for ``seconds`` from the C sender, one valid packet every 100 ms
    (none without ``knocks``)."""
    count = int(seconds * 10) + 1 if knocks else 0
    valid = [daemon.valid_packet() for _ in range(count)]
    valid_file = daemon.workdir / "valid.txt"
    valid_file.write_bytes(b"".join(packet + b"\n" for _port, packet in valid))
    drops0 = link_drops(daemon.pair)
    argv = ["taskset", "-c", str(BENCH_CPU), str(sender), SERVER_IP, "62201", str(rate),
            str(seconds), str(junk), str(valid_file), "100"]  # fmt: skip
    proc = daemon.pair.client.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while proc.poll() is None:
        if on_tick is not None:
            on_tick()
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"flood sender: {err.decode(errors='replace').strip()}")
    fields: dict[str, str] = {}
    sent_at: list[tuple[int, float]] = []
    for line in out.decode().splitlines():
        key, _, value = line.partition(" ")
        if key == "valid":
            index, when = value.split()
            sent_at.append((valid[int(index)][0], float(when)))
        else:
            fields[key] = value
    return Flood(int(fields["junk"]), float(fields["seconds"]), int(fields["errors"]), sent_at,
                 link_drops(daemon.pair) - drops0)  # fmt: skip


@contextmanager
def running(
    name: str,
    host: str,
    udp: bool,
    root: Path,
    stanzas: str | None = None,
    *,
    conf: str = FULL_CONF,
    make: type[Daemon] = Daemon,
    tag: str = "",
    nfq: bool = False,
) -> Iterator[tuple[Daemon, socket.socket, Monitor]]:
    """``name``'s daemon on a host whose default-drop policy is in ``host`` (nftables/iptables).

    ``make``: the daemon's class (one whose knocks are of another kind); ``tag`` names its
    working directory apart from other setups of the same daemon and host.
    """
    with net_pair("bn") as pair:
        policy = drop_policy_nft if host == "nftables" else drop_policy_iptables
        policy(pair.server, allow_udp=[62201] if udp else [])
        kind = "udp" if udp else "nfq" if nfq else "pcap"
        daemon = make(name, udp, pair, root / f"{name}-{host}-{kind}{tag}", nfq=nfq)
        if stanzas is not None:
            daemon.stanzas, daemon.conf_extra = stanzas, conf
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
    root.mkdir(parents=True, exist_ok=True)
    junk = root / "junk.txt"
    junk.write_bytes(b"".join(p + b"\n" for p in junk_packets()))
    sender = sender_binary(root)
    stanzas = None
    if args.stanzas == "full":
        homes = root / "gnupg"
        if not homes.exists():
            build_homes(homes)
        stanzas = full_stanzas(homes / "srv")
    nfq = getattr(args, "capture", "") == "nfq"
    with running(name, host, udp, root, stanzas, nfq=nfq) as (daemon, sock, monitor):
        out["latency"], out["latency nft monitor"] = latency(daemon, sock, monitor, args.knocks)
        best = target = 0
        floods: list[tuple[int, Flood, int, list[float]]] = []
        for rate in args.rates:
            result = flood(daemon, rate, args.flood_seconds, junk=junk, sender=sender)
            granted = monitor.drain()
            lost = sum(1 for port, _at in result.valid if port not in granted)
            under = [(monitor.seen[p] - at) * 1000 for p, at in result.valid if p in monitor.seen]
            floods.append((rate, result, lost, under))
            if lost:
                break
            # the rate the sender reached, not the one asked for (it falls short when the
            # kernel's work for each packet, on the sender's core, is dearer: iptables)
            best, target = max(best, int(round(result.rate, -2))), rate
        out["floods"] = floods
        out["best_rate"] = best
        # CPU per 1000 junk packets under a sustained flood (the goal's case) and a light one
        for rate in (100_000, 10_000):
            daemon.wait_idle()  # what an earlier flood left behind is not this one's cost
            cpu0, dropped0 = daemon.cpu_seconds(), socket_drops(daemon.pair)
            result = flood(daemon, rate, 4.0, junk=junk, sender=sender)
            daemon.wait_idle()  # ... and this one's backlog is
            cpu_ms = (daemon.cpu_seconds() - cpu0) * 1000
            out[f"cpu_ms_per_1000 at {rate}"] = cpu_ms / (result.junk / 1000)
            out[f"cpu rate {rate}"] = result.rate
            # in UDP mode, what the socket took (a daemon that falls behind is spared the rest)
            received = result.junk - (socket_drops(daemon.pair) - dropped0)
            out[f"cpu per received at {rate}"] = cpu_ms / max(received / 1000, 0.001)
            out[f"received at {rate}"] = received
        samples: list[int] = [daemon.rss_kib()]
        result = flood(daemon, min(100_000, max(target, 1000)), 10.0, junk=junk, sender=sender,
                       on_tick=lambda: samples.append(daemon.rss_kib()))  # fmt: skip
        samples.append(daemon.rss_kib())
        out["rss"] = samples
        out["rss rate"] = result.rate
    return out


def measure_gnupg(
    name: str, host: str, udp: bool, root: Path, args: argparse.Namespace
) -> dict[str, object]:
    """Rijndael knocks under a flood of GnuPG-sized junk that a GnuPG stanza must decrypt."""
    root.mkdir(parents=True, exist_ok=True)
    junk = root / "gnupg-junk.txt"
    # canonical base64 (702 characters and the 2 of the prefix make whole groups of 4): the
    # core's strict decoding takes it, so every one of them is for gpg to judge
    junk.write_bytes(b"".join(p + b"\n" for p in junk_packets(512, 702)))
    sender = sender_binary(root)
    homes = root / "gnupg"
    if not homes.exists():
        build_homes(homes)
    out: dict[str, object] = {}
    nfq = getattr(args, "capture", "") == "nfq"
    with running(name, host, udp, root, gnupg_stanzas(homes / "srv"), conf="", nfq=nfq) as (
        daemon,
        sock,
        mon,
    ):
        out["quiet"], _printed = latency(daemon, sock, mon, 10)
        daemon.wait_idle()
        own0, children0 = daemon.process_cpu()
        result = flood(daemon, args.gnupg_rate, args.gnupg_seconds, junk=junk, sender=sender)
        granted = mon.drain(settle=3.0)
        daemon.wait_idle(limit=60.0)
        own, children = daemon.process_cpu()
        out["cpu_s"], out["gpg_cpu_s"] = own - own0, children - children0
        out["flood"] = result
        out["lost"] = sum(1 for port, _at in result.valid if port not in granted)
        out["under"] = [(mon.seen[p] - at) * 1000 for p, at in result.valid if p in mon.seen]
        if name == "ours" and daemon.proc is not None:  # the counters, into the log (SIGUSR1)
            daemon.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
        log = (daemon.workdir / "daemon.log").read_text(errors="replace")
        counters = [line for line in log.splitlines() if "counters:" in line]
        out["counters"] = counters[-1].split("counters:", 1)[1].strip() if counters else ""
    return out


def report_gnupg(label: str, r: dict[str, object]) -> None:
    """One row: knocks' rule times quiet and under the GnuPG flood, losses, CPU, counters."""
    quiet, under, result = r["quiet"], r["under"], r["flood"]
    assert isinstance(quiet, list) and isinstance(under, list) and isinstance(result, Flood)
    med = f"{statistics.median(quiet):.2f} ms" if quiet else "n/a"
    umed = f"{statistics.median(under):.2f} ms" if under else "n/a"
    p90 = f"{statistics.quantiles(under, n=10)[-1]:.1f} ms" if len(under) >= 10 else "n/a"
    print(f"{label:<24}{med:>12}{umed:>12}{p90:>10}{r['lost']:>4} of {len(result.valid):<5}"
          f"{result.rate:>9,.0f} pps{r['cpu_s']:>8.1f} s{r['gpg_cpu_s']:>8.1f} s",
          flush=True)  # fmt: skip
    if r["counters"]:
        print(f"    counters: {r['counters']}", flush=True)


Measure = Callable[[str, str, bool, Path, argparse.Namespace], dict[str, object]]


def run_setups(
    args: argparse.Namespace,
    measure_one: Measure,
    report_one: Callable[[str, dict[str, object]], None],
) -> None:
    """Each daemon on the host it is made for, in each capture mode asked for: measure, report.

    Ours detects the firewall from the policy, the C fwknopd only knows
    iptables; ours on iptables too, for a like-for-like row.
    """
    for name, host in (("ours", "nftables"), ("ours", "iptables"), ("c", "iptables")):
        if (args.only and name != args.only) or host not in args.hosts:
            continue
        for mode in args.modes:
            if mode == "nfq" and name != "ours":  # not in the Debian build of fwknopd
                continue
            udp, args.capture = mode == "udp", mode
            label = f"{name}/{host} {'UDP' if udp else 'NFQUEUE' if mode == 'nfq' else 'sniff'}"
            try:
                report_one(label, measure_one(name, host, udp, args.workdir, args))
            except (RuntimeError, OSError) as exc:  # one setup failing must not lose the rest
                print(f"{label:<24}failed: {str(exc).splitlines()[-1:]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knocks", type=int, default=40)
    parser.add_argument("--flood-seconds", type=float, default=3.0)
    parser.add_argument("--rates", type=int, nargs="+",
                        default=[1_000, 10_000, 50_000, 100_000, 150_000])  # fmt: skip
    parser.add_argument("--only", choices=["ours", "c"])
    parser.add_argument("--hosts", nargs="+", choices=["nftables", "iptables"],
                        default=["nftables", "iptables"])  # fmt: skip
    parser.add_argument("--modes", nargs="+", choices=["sniff", "udp", "nfq"],
                        default=["sniff", "udp"])  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fwknopd-bench"))
    parser.add_argument("--stanzas", choices=["one", "full"], default="one",
                        help="full: NAT and GnuPG stanzas after the knocks' one")  # fmt: skip
    parser.add_argument("--gnupg-flood", action="store_true",
                        help="instead: Rijndael knocks under GnuPG-sized junk for a GnuPG stanza "
                             "without an HMAC key")  # fmt: skip
    parser.add_argument("--gnupg-rate", type=int, default=1_000)
    parser.add_argument("--gnupg-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes network namespaces")
    os.sched_setaffinity(0, {BENCH_CPU})  # the monitor and senders inherit it: off CPU 0
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    if args.gnupg_flood:
        print(f"{'':<24}{'rule quiet':>12}{'under flood':>12}{'p90':>10}{'lost':>13}"
              f"{'GnuPG junk':>13}{'CPU':>8}{'gpg CPU':>10}", flush=True)  # fmt: skip
        run_setups(args, measure_gnupg, report_gnupg)
        print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
        return
    header = f"{'':<24}{'rule median':>12}{'p90':>8}{'no loss at':>14}{'CPU/1000 at 100k':>18}"
    print(f"{header}{'at 10k':>9}{'RSS start/max/end KiB':>26}", flush=True)
    run_setups(args, measure, report)
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
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
    printed = r["latency nft monitor"]
    assert isinstance(printed, list)
    if printed:
        print(f"    packet -> rule by the kernel's event: {len(lat)} of {len(printed)} knocks; "
              f"by nft monitor's line: median {statistics.median(printed):.2f} ms")  # fmt: skip
    floods = r["floods"]
    assert isinstance(floods, list)
    for rate, result, lost, under in floods:
        late = max((at - (result.valid[0][1] + i * 0.1) for i, (_p, at) in enumerate(result.valid)),
                   default=0.0)  # fmt: skip
        grant = f", rule {statistics.median(under):.1f} ms median" if under else ""
        print(f"    flood {rate:,} pps: achieved {result.rate:,.0f} pps ({result.junk:,} junk in "
              f"{result.seconds:.2f} s); {len(result.valid)} valid (latest "
              f"{late * 1000:.1f} ms late), {lost} lost{grant}; link dropped "
              f"{result.link_drops:,}")  # fmt: skip
    hi_rate, lo_rate, rss_rate = r["cpu rate 100000"], r["cpu rate 10000"], r["rss rate"]
    print(f"    CPU floods achieved {hi_rate:,.0f} and {lo_rate:,.0f} pps; "
          f"RSS flood {rss_rate:,.0f} pps")  # fmt: skip
    if "UDP" in label:
        print(f"    UDP socket took {r['received at 100000']:,} and {r['received at 10000']:,} of "
              f"the CPU floods' junk: CPU per 1000 taken {r['cpu per received at 100000']:.1f} "
              f"and {r['cpu per received at 10000']:.1f} ms")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
