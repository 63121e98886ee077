"""A fleet for end-to-end tests: gateways in namespaces of their own, one client, one Redis.

```
                 198.18.I.0/24                  198.19.I.0/24
client (c) ──── veth ──── gateway I (gI) ──── veth ──── redis (r)
198.18.100.1 on lo, the client's one address; gI is 198.18.I.1, Redis 198.19.I.1
```

Each gateway has its own link to the client and its own link to Redis
(point-to-point veths: no bridge floods one gateway's packets to another, so
each daemon sniffs only what is sent to it). The client has one address,
198.18.100.1, that it uses towards every gateway (the source of its packets
and connections), as a client of an HA pair or an anycast address has: a
grant for it made at one gateway works at any other. Redis runs in its own
namespace, listening on its address on each link. Names carry the PID, so
runs in parallel do not meet; everything started is stopped by PID.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .netns import Netns, drop_policy_nft, listen_tcp_in
from .redis_server import RedisServer
from .wait import DEADLINE

CLIENT = "198.18.100.1"
_counter = itertools.count()


def gateway_ip(index: int) -> str:
    """Gateway ``index``'s address on its link to the client."""
    return f"198.18.{index}.1"


def redis_ip(index: int) -> str:
    """Redis's address on its link to gateway ``index``."""
    return f"198.19.{index}.1"


@dataclass
class Fleet:
    """The namespaces, interface names and the Redis of one fleet."""

    client: Netns
    redis_ns: Netns
    gateways: list[Netns]
    client_ifs: list[str]  # gateway I's interface towards the client
    redis: RedisServer
    extra: list[Netns] = field(default_factory=list)

    def tcp_open(self, index: int, port: int = 22, timeout: float = 1.0) -> bool:
        """Whether the client connects to gateway ``index``'s ``port`` now.

        For a port that should be closed (its refusal already logged); to wait
        for a change, use ``opens``/``closes``.
        """
        res = self.client.python(
            "tcp_probe.py", gateway_ip(index), str(port), str(timeout), timeout=timeout + 30
        )
        return res.returncode == 0

    def _probe_until(self, state: str, index: int, port: int, timeout: float) -> bool:
        res = self.client.python(
            "tcp_probe.py", gateway_ip(index), str(port), "0.5", state, str(timeout),
            timeout=timeout + 60,
        )  # fmt: skip
        return res.returncode == 0

    def opens(self, index: int, port: int = 22, *, timeout: float = DEADLINE) -> bool:
        """Whether ``port`` of gateway ``index`` becomes reachable within ``timeout`` s."""
        return self._probe_until("open", index, port, timeout)

    def closes(self, index: int, port: int = 22, *, timeout: float = DEADLINE) -> bool:
        """Whether ``port`` of gateway ``index`` stops being reachable within ``timeout`` s."""
        return self._probe_until("closed", index, port, timeout)

    def send(self, index: int, packet: str, port: int = 62201) -> None:
        """One UDP datagram from the client to gateway ``index``."""
        res = self.client.python(
            "send_udp.py", gateway_ip(index), str(port), "0", CLIENT, stdin=packet.encode() + b"\n"
        )
        assert res.returncode == 0, res.stderr.decode()

    def redis_url(self, index: int) -> str:
        """The URL gateway ``index`` reaches Redis by."""
        return f"redis://{redis_ip(index)}:{self.redis.port}/0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def fleet(workdir: Path, gateways: int = 2) -> Iterator[Fleet]:
    """Make the namespaces and links, start Redis and a TCP listener (port 22) per gateway."""
    tag = f"fl{os.getpid() % 100000}x{next(_counter)}"
    names = [f"{tag}c", f"{tag}r", *(f"{tag}g{i}" for i in range(gateways))]
    client, redis_ns = Netns(names[0]), Netns(names[1])
    gws = [Netns(name) for name in names[2:]]
    made: list[str] = []
    server: RedisServer | None = None
    try:
        for name in names:
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", client.name, "addr", "add", f"{CLIENT}/32", "dev", "lo")
        client_ifs = []
        for i, gw in enumerate(gws):
            for peer, net, peer_ip, gw_ip, kind in (
                (client, f"198.18.{i}", f"198.18.{i}.2", gateway_ip(i), "c"),
                (redis_ns, f"198.19.{i}", redis_ip(i), f"198.19.{i}.2", "r"),
            ):
                gw_if, peer_if = f"{tag}{kind}{i}G"[-15:], f"{tag}{kind}{i}P"[-15:]
                _ip("link", "add", gw_if, "netns", gw.name, "type", "veth", "peer", "name",
                    peer_if, "netns", peer.name)  # fmt: skip
                _ip("-n", gw.name, "addr", "add", f"{gw_ip}/24", "dev", gw_if)
                _ip("-n", peer.name, "addr", "add", f"{peer_ip}/24", "dev", peer_if)
                _ip("-n", gw.name, "link", "set", gw_if, "up")
                _ip("-n", peer.name, "link", "set", peer_if, "up")
                if kind == "c":
                    client_ifs.append(gw_if)
                    # the client speaks from its one address; the gateway routes back to it
                    _ip("-n", client.name, "route", "replace", f"{net}.0/24", "dev", peer_if,
                        "src", CLIENT)  # fmt: skip
                    _ip("-n", gw.name, "route", "add", f"{CLIENT}/32", "via", peer_ip)
            drop_policy_nft(gw)
            listen_tcp_in(gw, [22])
        server = RedisServer(
            workdir / "redis",
            bind=["127.0.0.1", *(redis_ip(i) for i in range(gateways))],
            ns=redis_ns,
        ).start()
        yield Fleet(client, redis_ns, gws, client_ifs, server)
    finally:
        if server is not None:
            server.stop()
        for ns in (client, redis_ns, *gws):
            ns.stop_all()
        for name in made:
            subprocess.run(
                ["ip", "netns", "del", name], capture_output=True, check=False, timeout=30
            )
