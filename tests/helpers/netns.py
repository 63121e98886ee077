"""Network namespaces for end-to-end tests: real kernels, real firewalls, no host changes.

``net_pair()`` makes two namespaces joined by a veth pair (server 198.18.0.1,
client 198.18.0.2, and 2001:db8::1 / ::2), nothing in the host namespace.
Every process started through a namespace is tracked by PID and stopped at
teardown, before the namespaces go. Names are unique per process, so tests
can run in parallel (pytest-xdist).

Helpers here are shared by every end-to-end test (core interop, server,
client); add to them rather than writing another. Waits follow
``tests/helpers/wait.py``: ``wait_open``/``wait_closed`` for a port (one
probe process polling inside the client namespace), ``wait_for`` for the
rest (re-exported here).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .wait import DEADLINE, wait_for  # noqa: F401 - wait_for: tests import it from here too

HELPERS = Path(__file__).resolve().parent
SERVER_IP = "198.18.0.1"
CLIENT_IP = "198.18.0.2"
SERVER_IP6 = "2001:db8::1"
CLIENT_IP6 = "2001:db8::2"
_counter = itertools.count()
# a module's marks when its tests knock between namespaces with the real fwknop (in CI a
# skip of any of them fails the run: tests/conftest.py)
REAL_KNOCK_MARKS = [
    pytest.mark.interop,
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.usefixtures("real_fwknop", "namespaces"),
]


def unavailable_reason() -> str | None:
    """Why namespace tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"fkprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@dataclass
class Netns:
    """One network namespace and the processes we started in it."""

    name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command to completion inside the namespace."""
        return subprocess.run(
            self.argv(argv), check=check, timeout=timeout, input=stdin, capture_output=True, env=env
        )

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a long-running command (``ip netns exec`` execs it: same PID)."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.argv(argv), **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def python(
        self, script: str, *args: str, timeout: float = 60, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one of the helper scripts of this directory with this interpreter."""
        return self.run(
            [sys.executable, str(HELPERS / script), *args],
            timeout=timeout,
            stdin=stdin,
            check=False,
        )

    def stop_all(self) -> None:
        """Stop every process we started here: SIGTERM, then SIGKILL (see ``stop_process``)."""
        for proc in self.procs:
            stop_process(proc)
        self.procs.clear()


def stop_process(proc: subprocess.Popen[bytes], grace: float = DEADLINE) -> None:
    """Stop one process we started, by its PID: SIGTERM, SIGKILL if it is not gone in ``grace`` s.

    The grace is generous: a daemon's clean exit (revoking grants, flushing
    its chains, one ``iptables`` process at a time) is what tests check.
    """
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=grace)


def _source(address: str | None) -> list[str]:
    """tcp_probe.py's arguments to connect from ``address`` (none: the default one)."""
    return ["--source", address] if address else []


@dataclass
class NetPair:
    """A server and a client namespace joined by a veth pair."""

    server: Netns
    client: Netns
    server_if: str
    client_if: str
    server_ip: str = SERVER_IP
    client_ip: str = CLIENT_IP
    server_ip6: str = SERVER_IP6
    client_ip6: str = CLIENT_IP6

    def tcp_open(
        self, port: int, *, host: str | None = None, timeout: float = 1.0, source: str | None = None
    ) -> bool:
        """Whether a TCP connect from the client (from ``source``) to the server port works now.

        For a port that should be closed (no knock yet, or the knock's refusal
        already logged); to wait for a change, use ``wait_open``/``wait_closed``.
        """
        res = self.client.python(
            "tcp_probe.py", *_source(source), host or self.server_ip, str(port), str(timeout),
            timeout=timeout + 30,
        )  # fmt: skip
        return res.returncode == 0

    def add_addresses(self, server: str, client: str) -> None:
        """One more address on each end of the veth pair (``a.b.c.d/nn``)."""
        _ip("-n", self.server.name, "addr", "add", server, "dev", self.server_if)
        _ip("-n", self.client.name, "addr", "add", client, "dev", self.client_if)

    def send_tcp(self, data: bytes, *, port: int = 62201, host: str | None = None) -> None:
        """Send ``data`` over one TCP connection from the client namespace (an HTTP request)."""
        res = self.client.python("send_tcp.py", host or self.server_ip, str(port), stdin=data)
        assert res.returncode == 0, res.stderr.decode()

    def _probe_until(
        self, state: str, port: int, host: str | None, timeout: float, source: str | None
    ) -> bool:
        res = self.client.python(
            "tcp_probe.py", *_source(source), host or self.server_ip, str(port), "0.5", state,
            str(timeout), timeout=timeout + 60,
        )  # fmt: skip
        return res.returncode == 0

    def wait_open(
        self, port: int, *, host: str | None = None, timeout: float = DEADLINE,
        source: str | None = None,
    ) -> bool:  # fmt: skip
        """Whether a TCP connect (from ``source``) to the server's ``port`` succeeds in time."""
        return self._probe_until("open", port, host, timeout, source)

    def wait_closed(
        self, port: int, *, host: str | None = None, timeout: float = DEADLINE,
        source: str | None = None,
    ) -> bool:  # fmt: skip
        """Whether TCP connects (from ``source``) to the server's ``port`` fail again in time."""
        return self._probe_until("closed", port, host, timeout, source)

    def listen_tcp(self, *ports: int) -> subprocess.Popen[bytes]:
        """Start TCP listeners on the server (all addresses) that accept and close."""
        return listen_tcp_in(self.server, ports)

    def send_udp(
        self,
        packets: Sequence[str],
        *,
        port: int = 62201,
        host: str | None = None,
        interval: float = 0.0,
        source: str | None = None,
    ) -> None:
        """Send each packet as one UDP datagram from the client namespace (from ``source``)."""
        data = "\n".join(packets).encode() + b"\n"
        res = self.client.python(
            "send_udp.py",
            host or self.server_ip,
            str(port),
            str(interval),
            *([source] if source else []),
            stdin=data,
            timeout=60 + interval * len(packets),
        )
        assert res.returncode == 0, res.stderr.decode()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def net_pair(prefix: str = "fk") -> Iterator[NetPair]:
    """Create a fresh server/client namespace pair; remove it (and our processes) after."""
    tag = f"{prefix}{os.getpid() % 100000}x{next(_counter)}"
    srv, cli = f"{tag}s", f"{tag}c"
    sif, cif = f"{tag}S"[-15:], f"{tag}C"[-15:]
    pair = NetPair(Netns(srv), Netns(cli), sif, cif)
    try:
        _ip("netns", "add", srv)
        _ip("netns", "add", cli)
        _ip("link", "add", sif, "netns", srv, "type", "veth", "peer", "name", cif, "netns", cli)
        for ns, ifname, ip4, ip6 in (
            (srv, sif, SERVER_IP, SERVER_IP6),
            (cli, cif, CLIENT_IP, CLIENT_IP6),
        ):
            _ip("-n", ns, "addr", "add", f"{ip4}/24", "dev", ifname)
            _ip("-n", ns, "addr", "add", f"{ip6}/64", "dev", ifname, "nodad")
            _ip("-n", ns, "link", "set", ifname, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        pair.server.stop_all()
        pair.client.stop_all()
        for ns in (srv, cli):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=30)


def drop_policy_nft(ns: Netns, *, allow_udp: Sequence[int] = ()) -> None:
    """A host-style default-drop input policy in nftables (``inet filter input``)."""
    allow = "".join(f"    udp dport {p} accept\n" for p in allow_udp)
    ruleset = (
        "table inet filter {\n"
        "  chain input {\n"
        "    type filter hook input priority filter; policy drop;\n"
        "    ct state established,related accept\n"
        "    iif lo accept\n"
        "    meta l4proto { icmp, ipv6-icmp } accept\n"
        f"{allow}"
        "  }\n"
        "}\n"
    )
    ns.run(["nft", "-f", "-"], stdin=ruleset.encode())


def drop_policy_iptables(ns: Netns, *, allow_udp: Sequence[int] = ()) -> None:
    """The same default-drop input policy with iptables (and ip6tables)."""
    for tool in ("iptables", "ip6tables"):
        ns.run(
            [
                tool,
                "-A",
                "INPUT",
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ]
        )
        ns.run([tool, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])
        proto = "icmp" if tool == "iptables" else "ipv6-icmp"
        ns.run([tool, "-A", "INPUT", "-p", proto, "-j", "ACCEPT"])
        for port in allow_udp:
            ns.run([tool, "-A", "INPUT", "-p", "udp", "--dport", str(port), "-j", "ACCEPT"])
        ns.run([tool, "-P", "INPUT", "DROP"])


def listen_tcp_in(ns: Netns, ports: Sequence[int]) -> subprocess.Popen[bytes]:
    """TCP listeners in ``ns`` (all addresses) that accept and close, once all are bound."""
    proc = ns.popen(
        [sys.executable, str(HELPERS / "tcp_listen.py"), *map(str, ports)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ready" once every port is bound
    assert line.strip() == b"ready", line
    return proc


INTERNAL_IP = "198.51.100.2"
GATEWAY_INTERNAL_IP = "198.51.100.1"
INTERNAL_IP6 = "2001:db8:1::2"  # with net_gateway(ipv6=True)
GATEWAY_INTERNAL_IP6 = "2001:db8:1::1"


@dataclass
class Gateway:
    """A client, a gateway (the server of ``pair``) and an internal host behind the gateway."""

    pair: NetPair
    internal: Netns
    gateway_if: str  # the gateway's interface to the internal network
    internal_if: str
    internal_ip: str = INTERNAL_IP
    gateway_internal_ip: str = GATEWAY_INTERNAL_IP

    def listen_internal(self, *ports: int) -> subprocess.Popen[bytes]:
        """TCP listeners on the internal host that accept and close."""
        return listen_tcp_in(self.internal, ports)


@contextmanager
def net_gateway(
    prefix: str = "gw", *, internal_route: bool = True, ipv6: bool = False
) -> Iterator[Gateway]:
    """``net_pair`` plus an internal host behind its server, which forwards (198.51.100.0/24).

    The client routes 198.51.100.0/24 through the gateway; the internal host
    routes back through it only with ``internal_route`` (without it, only SNAT
    gets replies back to the client). ``ipv6``: the same with 2001:db8:1::/64.
    """
    with net_pair(prefix) as pair:
        tag = pair.server.name[:-1]
        internal = Netns(f"{tag}i")
        gif, iif = f"{tag}G"[-15:], f"{tag}I"[-15:]
        gateway = Gateway(pair, internal, gif, iif)
        try:
            _ip("netns", "add", internal.name)
            _ip("link", "add", gif, "netns", pair.server.name, "type", "veth",
                "peer", "name", iif, "netns", internal.name)  # fmt: skip
            for ns, ifname, ip4 in (
                (pair.server.name, gif, GATEWAY_INTERNAL_IP),
                (internal.name, iif, INTERNAL_IP),
            ):
                _ip("-n", ns, "addr", "add", f"{ip4}/24", "dev", ifname)
                _ip("-n", ns, "link", "set", ifname, "up")
            _ip("-n", internal.name, "link", "set", "lo", "up")
            _ip("-n", pair.client.name, "route", "add", "198.51.100.0/24", "via", SERVER_IP)
            if internal_route:
                _ip("-n", internal.name, "route", "add", "default", "via", GATEWAY_INTERNAL_IP)
            pair.server.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            if ipv6:
                _ip("-n", pair.server.name, "addr", "add", f"{GATEWAY_INTERNAL_IP6}/64", "dev",
                    gif, "nodad")  # fmt: skip
                _ip("-n", internal.name, "addr", "add", f"{INTERNAL_IP6}/64", "dev", iif, "nodad")
                _ip("-n", pair.client.name, "route", "add", "2001:db8:1::/64", "via", SERVER_IP6)
                if internal_route:
                    _ip("-n", internal.name, "-6", "route", "add", "default", "via",
                        GATEWAY_INTERNAL_IP6)  # fmt: skip
                pair.server.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
            yield gateway
        finally:
            internal.stop_all()
            subprocess.run(
                ["ip", "netns", "del", internal.name], capture_output=True, check=False, timeout=30
            )


def drop_forward_nft(ns: Netns) -> None:
    """A default-drop forward policy in nftables (``inet filter forward``), replies allowed."""
    ns.run(
        ["nft", "-f", "-"],
        stdin=b"table inet filter {\n  chain forward {\n"
        b"    type filter hook forward priority filter; policy drop;\n"
        b"    ct state established,related accept\n  }\n}\n",
    )


def drop_forward_iptables(ns: Netns) -> None:
    """The same default-drop forward policy with iptables."""
    ns.run(["iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
            "-j", "ACCEPT"])  # fmt: skip
    ns.run(["iptables", "-P", "FORWARD", "DROP"])
