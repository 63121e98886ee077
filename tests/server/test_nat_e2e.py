"""NAT on a real kernel: the real fwknop client, our fwknopd on a gateway, a host behind it.

Three namespaces (``net_gateway``): the client (198.18.0.2), the gateway
running our fwknopd (198.18.0.1, and 198.51.100.1 inside) with a default-drop
input and forward policy, and an internal host (198.51.100.2) with a TCP
service. For each firewall backend: the client cannot reach the service
before its knock, reaches it through the gateway after, and cannot once the
access timeout has passed (new connections; the kernel or our timer ended
the grant).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    INTERNAL_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    Gateway,
    drop_forward_iptables,
    drop_forward_nft,
    drop_policy_iptables,
    drop_policy_nft,
    net_gateway,
)
from tests.helpers.ourd import OurFwknopd
from tests.helpers.wait import DEADLINE

pytestmark = REAL_KNOCK_MARKS

KEYS = generate_keys()
BACKENDS = ["nftables", "iptables"]
# seconds a grant lasts: the checks made while it is open (probes, an --fw-list process)
# must fit in it on a loaded machine
TIMEOUT = 10


def _policy(backend: str, gateway: Gateway) -> None:
    if backend == "nftables":
        drop_policy_nft(gateway.pair.server)
        drop_forward_nft(gateway.pair.server)
    else:
        drop_policy_iptables(gateway.pair.server)
        drop_forward_iptables(gateway.pair.server)


def _reaches(gateway: Gateway, port: int, host: str = SERVER_IP) -> bool:
    return gateway.pair.tcp_open(port, host=host, timeout=0.5)


def _opens(gateway: Gateway, port: int, host: str = SERVER_IP) -> bool:
    return gateway.pair.wait_open(port, host=host)


def _closes(gateway: Gateway, port: int, host: str = SERVER_IP) -> bool:
    return gateway.pair.wait_closed(port, host=host, timeout=TIMEOUT + DEADLINE)


def _knock(gateway: Gateway, tmp_path: Path, *args: str) -> str:
    return real_knock(
        gateway.pair.client, tmp_path / "home", SERVER_IP, *args, keys=key_args(KEYS),
        allow=CLIENT_IP,
    )  # fmt: skip


def _daemon(
    gateway: Gateway, tmp_path: Path, backend: str, conf: str, stanza: str = ""
) -> OurFwknopd:
    return OurFwknopd(
        gateway.pair.server,
        tmp_path,
        interface=gateway.pair.server_if,
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\n{stanza}",
        conf_extra=conf,
        firewall=backend,
    ).start()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with net_gateway("nx") as made:
        yield made


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nat_knock_reaches_the_internal_service_until_the_timeout(
    backend: str, gateway: Gateway, tmp_path: Path
) -> None:
    _policy(backend, gateway)
    gateway.listen_internal(22)
    server = _daemon(gateway, tmp_path, backend, "ENABLE_IPT_FORWARDING Y\n")
    assert not _reaches(gateway, 40022)  # nothing there on the gateway
    assert not _reaches(gateway, 22, INTERNAL_IP)  # and no forwarding
    _knock(gateway, tmp_path, "-A", "tcp/22", "-N", f"{INTERNAL_IP}:22", "--nat-port", "40022")
    assert _opens(gateway, 40022), server.log()  # through the gateway, to the internal host
    assert server.wait_log(
        f"opening tcp/40022 for 198.18.0.2 for {TIMEOUT} s, forwarded to {INTERNAL_IP}:22"
    )
    listing = subprocess.run(
        gateway.pair.server.argv(server.command("--fw-list")), capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert INTERNAL_IP in listing
    assert _closes(gateway, 40022)
    assert server.stop() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_local_nat_reaches_a_service_of_the_gateway_itself(
    backend: str, gateway: Gateway, tmp_path: Path
) -> None:
    _policy(backend, gateway)
    gateway.pair.listen_tcp(22)  # on the gateway
    server = _daemon(gateway, tmp_path, backend, "ENABLE_IPT_LOCAL_NAT Y\n")
    assert not _reaches(gateway, 40022) and not _reaches(gateway, 22)
    _knock(gateway, tmp_path, "-A", "tcp/22", "--nat-local", "--nat-port", "40022")
    assert _opens(gateway, 40022), server.log()
    assert server.wait_log(f"opening tcp/40022 for 198.18.0.2 for {TIMEOUT} s, local NAT to")
    assert _closes(gateway, 40022)


@pytest.fixture
def routeless() -> Iterator[Gateway]:
    """The internal host cannot route back to the client: only SNAT gets replies home."""
    with net_gateway("ns", internal_route=False) as made:
        yield made


@pytest.mark.parametrize("backend", BACKENDS)
def test_snat_and_masquerade_get_the_replies_home(
    backend: str, routeless: Gateway, tmp_path: Path
) -> None:
    gateway = routeless
    _policy(backend, gateway)
    gateway.listen_internal(22, 2222)
    snat = (
        f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\nREQUIRE_USERNAME snat\n"
        f"FORCE_NAT {INTERNAL_IP} 2222\nFORCE_SNAT {gateway.gateway_internal_ip}\n"
    )
    forward_all = (
        f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\nREQUIRE_USERNAME all\n"
        f"FORWARD_ALL Y\nFORCE_SNAT {gateway.gateway_internal_ip}\n"
    )
    server = OurFwknopd(
        gateway.pair.server,
        tmp_path,
        interface=gateway.pair.server_if,
        # the first stanza forces NAT and SNAT, the second forwards everything (with SNAT),
        # the third masquerades (ENABLE_IPT_SNAT)
        access_conf=snat
        + forward_all
        + f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\n",
        conf_extra="ENABLE_IPT_FORWARDING Y\nENABLE_IPT_SNAT Y\n",
        firewall=backend,
    ).start()
    assert not _reaches(gateway, 40022) and not _reaches(gateway, 22, INTERNAL_IP)
    # without SNAT the internal host's replies have no way back
    _knock(gateway, tmp_path, "-U", "plain", "-A", "tcp/22", "-N", f"{INTERNAL_IP}:22",
           "--nat-port", "40022")  # fmt: skip
    assert _opens(gateway, 40022), server.log()  # ENABLE_IPT_SNAT without an address: masquerade
    _knock(gateway, tmp_path, "-U", "snat", "-A", "tcp/40023")
    assert _opens(gateway, 40023), server.log()  # FORCE_NAT to :2222, SNAT to the gateway
    assert server.wait_log(
        f"(user snat, stanza #1): opening tcp/40023 for 198.18.0.2 for {TIMEOUT} s, "
        f"forwarded to {INTERNAL_IP}:2222"
    )
    # FORWARD_ALL: the client routes through the gateway to any port of the internal host
    _knock(gateway, tmp_path, "-U", "all", "-A", "tcp/1")
    assert _opens(gateway, 22, INTERNAL_IP) and _opens(gateway, 2222, INTERNAL_IP), server.log()
    assert server.wait_log(f"(user all, stanza #2): opening tcp/1 for 198.18.0.2 for {TIMEOUT} s, "
                           "forwarding all")  # fmt: skip
    assert _closes(gateway, 40022) and _closes(gateway, 40023)
    assert _closes(gateway, 22, INTERNAL_IP)
