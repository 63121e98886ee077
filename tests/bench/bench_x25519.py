"""fwknopd's cost per junk packet as stanzas grow: fwknop's Rijndael+HMAC against the x25519 mode.

    python tests/bench/bench_x25519.py [--seconds S]                  # the decision, in process
    python tests/bench/bench_x25519.py --daemon [--rate R] [--flood-seconds S] [--knocks N]
                                       [--hosts nftables iptables]     # the daemon (root)

Six setups, each loaded as fwknopd loads its files (``settings.load``): 1
and 200 stanzas, all ``SOURCE ANY``, of

* ``rijndael``: each stanza with Rijndael and HMAC keys of its own, and
  junk that is base64 of a packet's length (it reaches the HMAC check:
  one HMAC per stanza, the check fwknopd makes);
* ``x25519 unknown``: each stanza naming one client key, and x25519-format
  junk with random key ids (refused at the key id lookup);
* ``x25519 known``: the same stanzas, and junk carrying one client's key
  id (canonical base64 of a sealed part's length: it reaches the AEAD, which
  refuses it).

In process (the default): the CPU the daemon's decision costs per 1000 junk
packets, ``Screen.check`` as capture calls it for every packet (a muted
flood costs this too: muting only spares the logging), the best of five
trials, on one core. With ``--daemon``: our fwknopd in a namespace pair
behind a default-drop policy, sniffing, flooded with each junk at
``--rate`` packets a second by ``flood.c``; its CPU time (every thread, from
/proc) per 1000 packets it judged (its own counters, by SIGUSR1); then the
time from a valid knock to the kernel's rule (median), Rijndael and x25519,
with one stanza. The load average is printed before and after: compare runs
taken under similar load.

Expected: the x25519 rows stay flat from 1 to 200 stanzas (one lookup, then
at most one AEAD); the Rijndael row grows with the stanzas (one HMAC each).
This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fwknop_server.processor import Processor
from fwknop_server.serverkey import write_server_key
from fwknop_server.settings import Options, load
from fwknop_server.vocab import Reason, Refused

from fwknop_core import (
    SpaMessage,
    X25519PrivateKey,
    X25519SharedKey,
    build_x25519_packet,
    generate_keys,
)
from tests.bench.bench_core import rate, x25519_junk
from tests.bench.bench_server import (
    BENCH_CPU,
    CLIENT_IP,
    Daemon,
    flood,
    latency,
    running,
    sender_binary,
)
from tests.bench.bench_server import junk_packets as rijndael_junk

SERVER = X25519PrivateKey(bytes(range(1, 33)))
STANZA_COUNTS = (1, 200)
KINDS = ("rijndael", "x25519 unknown", "x25519 known")
# the counter each kind's junk is refused under
COUNTER = {"rijndael": "hmac", "x25519 unknown": "unknown_key_id", "x25519 known": "aead"}
SRC = ipaddress.ip_address("198.18.0.2")


class Setup:
    """One configuration: its files, its access stanzas' clients, and its junk."""

    def __init__(self, kind: str, count: int, root: Path) -> None:
        self.kind, self.count = kind, count
        self.dir = root / f"{kind.replace(' ', '-')}-{count}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key_file = self.dir / "server_x25519.key"
        if not self.key_file.exists():
            write_server_key(self.key_file, SERVER)
        if kind == "rijndael":
            keys = [generate_keys() for _ in range(count)]
            self.access = "".join(
                f"SOURCE ANY\nKEY_BASE64 {k.rijndael.to_base64()}\n"
                f"HMAC_KEY_BASE64 {k.hmac.to_base64()}\nFW_ACCESS_TIMEOUT 300\n\n"
                for k in keys
            )
            self.rijndael = keys[0]
            self.junk = rijndael_junk(1024)
            self.conf = ""
        else:
            self.clients = [X25519PrivateKey.generate() for _ in range(count)]
            self.access = "".join(
                f"SOURCE ANY\nCLIENT_PUBLIC_KEY {c.public_key.to_text()}\nFW_ACCESS_TIMEOUT 300\n\n"
                for c in self.clients
            )
            # a known id: the last stanza's client (a lookup finds any of them alike)
            known = X25519SharedKey.for_client(self.clients[-1], SERVER.public_key)
            self.junk = x25519_junk(1024, known.key_id_text if kind == "x25519 known" else None)
            self.conf = f"SERVER_PRIVATE_KEY_FILE {self.key_file}\n"
        self.junk_file = self.dir / "junk.txt"
        self.junk_file.write_bytes(b"".join(p + b"\n" for p in self.junk))

    @property
    def label(self) -> str:
        """``x25519 known, 200 stanzas``."""
        return f"{self.kind}, {self.count} stanza{'s' if self.count > 1 else ''}"

    def processor(self) -> Processor:
        """The pipeline ``settings.load`` gives for these files (as the daemon builds it)."""
        conf = self.dir / "fwknopd.conf"
        conf.write_text(f"FWKNOP_RUN_DIR {self.dir}/run\nFIREWALL_TYPE log\n{self.conf}")
        access = self.dir / "access.conf"
        access.write_text(self.access)
        settings = load(Options(conf, access_paths=(access,)))
        pipeline = settings.pipeline_for(ipv6=True, nat=False)
        return Processor(settings.stanzas, pipeline, keyring=settings.x25519)


def in_process(setup: Setup, seconds: float) -> float:
    """CPU milliseconds per 1000 junk packets through the screen (capture's call per packet)."""
    check = setup.processor().screen.check
    junk = setup.junk
    expected = next(r for r in Reason if r.key == COUNTER[setup.kind])
    for data in junk[:16]:  # the junk is refused where it should be, not earlier
        verdict = check(data, SRC)
        assert isinstance(verdict, Refused) and verdict.reason is expected, (setup.label, verdict)
    it = iter(range(1 << 62))

    def one() -> object:
        return check(junk[next(it) & 1023], SRC)

    return 1e6 / rate(one, seconds)


class X25519Knocks(Daemon):
    """Our fwknopd whose knocks are x25519 packets from the first client of its setup."""

    client: X25519PrivateKey

    def valid_packet(self) -> tuple[int, bytes]:
        port = next(self.port_seq)
        msg = SpaMessage.access_request(CLIENT_IP, f"tcp/{port}", username="bench")
        shared = X25519SharedKey.for_client(self.client, SERVER.public_key)
        return port, build_x25519_packet(msg, shared).encode()


class RijndaelKnocks(Daemon):
    """Our fwknopd whose knocks are Rijndael+HMAC packets for the first stanza of its setup."""

    setup: Setup

    def valid_packet(self) -> tuple[int, bytes]:
        from fwknop_core import build_packet

        port = next(self.port_seq)
        msg = SpaMessage.access_request(CLIENT_IP, f"tcp/{port}", username="bench")
        keys = self.setup.rijndael
        return port, build_packet(msg, keys.rijndael, hmac_key=keys.hmac).encode()


_COUNTS = re.compile(r"(\w+)=(\d+)")


def counters(daemon: Daemon, timeout: float = 10.0) -> dict[str, int]:
    """Our fwknopd's counters, asked for by SIGUSR1 and read from its log."""
    assert daemon.proc is not None
    log = daemon.workdir / "daemon.log"
    before = log.read_text(errors="replace").count("counters:")
    daemon.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if "counters:" in ln]
        if len(lines) > before:
            return {k: int(v) for k, v in _COUNTS.findall(lines[-1].split("counters:", 1)[1])}
        time.sleep(0.05)
    raise RuntimeError("fwknopd did not log its counters")


def in_daemon(setup: Setup, host: str, args: argparse.Namespace) -> dict[str, object]:
    """The daemon's CPU per 1000 judged junk packets under a flood; knock latency with 1 stanza."""
    make: type[Daemon] = RijndaelKnocks if setup.kind == "rijndael" else X25519Knocks
    out: dict[str, object] = {}
    sender = sender_binary(args.workdir)
    tag = f"-{setup.kind.replace(' ', '-')}-{setup.count}"
    with running("ours", host, False, args.workdir, setup.access, conf=setup.conf, make=make,
                 tag=tag) as (daemon, sock, monitor):  # fmt: skip
        if isinstance(daemon, X25519Knocks):
            daemon.client = setup.clients[0]
        if isinstance(daemon, RijndaelKnocks):
            daemon.setup = setup
        if setup.count == 1 and setup.kind != "x25519 known":
            out["latency"], _printed = latency(daemon, sock, monitor, args.knocks)
        daemon.wait_idle()
        before, cpu0 = counters(daemon), daemon.cpu_seconds()
        result = flood(daemon, args.rate, args.flood_seconds, junk=setup.junk_file,
                       sender=sender, knocks=False)  # fmt: skip
        daemon.wait_idle()
        cpu = daemon.cpu_seconds() - cpu0
        after = counters(daemon)
        key = COUNTER[setup.kind]
        judged = after.get(key, 0) - before.get(key, 0)
        out["judged"], out["sent"], out["rate"] = judged, result.junk, result.rate
        out["cpu_ms_per_1000"] = cpu * 1000 / max(judged / 1000, 0.001)
        out["counters"] = after
    return out


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Measure each setup and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU time per in-process row")
    parser.add_argument("--daemon", action="store_true", help="measure fwknopd in namespaces")
    parser.add_argument("--rate", type=int, default=20_000, help="junk packets a second")
    parser.add_argument("--flood-seconds", type=float, default=5.0)
    parser.add_argument("--knocks", type=int, default=40)
    parser.add_argument("--hosts", nargs="+", choices=["nftables", "iptables"],
                        default=["nftables"])  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fwknopd-bench-x25519"))
    args = parser.parse_args()
    print(f"load average before: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if not args.daemon else args.workdir
        setups = [Setup(kind, n, root) for kind in KINDS for n in STANZA_COUNTS]
        if not args.daemon:
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
            _in_process_table(setups, args.seconds)
        else:
            if os.geteuid() != 0:
                sys.exit("run as root: --daemon makes network namespaces")
            os.sched_setaffinity(0, {BENCH_CPU})  # the sender and monitor: off the daemon's CPU
            for host in args.hosts:
                _daemon_table(setups, host, args)
    print(f"load average after: {load_average()}")


def _in_process_table(setups: list[Setup], seconds: float) -> None:
    print(f"{'CPU ms per 1000 junk packets (the screen)':<44}{'1 stanza':>10}{'200 stanzas':>13}"
          f"{'growth':>8}")  # fmt: skip
    rows = {}
    for kind in KINDS:
        one, many = rows[kind] = tuple(in_process(s, seconds) for s in setups if s.kind == kind)
        print(f"{kind:<44}{one:>10.2f}{many:>13.2f}{many / one:>7.1f}x", flush=True)
    print(f"{'junk packets judged a second (one core)':<44}{'1 stanza':>10}{'200 stanzas':>13}")
    for kind, (one, many) in rows.items():  # ms per 1000 packets -> packets a second
        print(f"{kind:<44}{1e6 / one:>10,.0f}{1e6 / many:>13,.0f}")


def _daemon_table(setups: list[Setup], host: str, args: argparse.Namespace) -> None:
    print(f"\nour fwknopd on {host}, sniffing, junk at {args.rate:,} pps for "
          f"{args.flood_seconds:.0f} s")  # fmt: skip
    print(f"{'':<30}{'CPU ms / 1000 judged':>21}{'judged':>9}{'of sent':>9}{'rule median':>13}")
    rows: dict[str, float] = {}
    show: Callable[[float], str] = lambda ms: f"{ms:.2f} ms"  # noqa: E731
    for setup in setups:
        try:
            r = in_daemon(setup, host, args)
        except (RuntimeError, OSError) as exc:  # one setup failing must not lose the rest
            print(f"{setup.label:<30}failed: {str(exc).splitlines()[-1:]}", flush=True)
            continue
        lat = r.get("latency")
        med = show(statistics.median(lat)) if isinstance(lat, list) and lat else ""
        cpu = r["cpu_ms_per_1000"]
        assert isinstance(cpu, float)
        rows[setup.label] = cpu
        print(f"{setup.label:<30}{cpu:>18.1f} ms{r['judged']:>9,}{r['sent']:>9,}{med:>13}",
              flush=True)  # fmt: skip
    for kind in KINDS:
        one, many = rows.get(f"{kind}, 1 stanza"), rows.get(f"{kind}, 200 stanzas")
        if one and many:
            print(f"    {kind}: 200 stanzas cost {many / one:.1f}x one stanza")


if __name__ == "__main__":
    main()
