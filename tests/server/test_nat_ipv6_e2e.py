"""NAT for IPv6 clients on a real kernel (nftables; ours, fwknopd has no IPv6 NAT).

Three namespaces (``net_gateway(ipv6=True)``): the client (2001:db8::2), the
gateway running our fwknopd (2001:db8::1, and 2001:db8:1::1 inside) with a
default-drop input and forward policy, and an internal host (2001:db8:1::2)
with TCP services. Our client knocks over IPv6 with its IPv6 address as the
allow IP; the stanza's ``FORCE_NAT``, or the client's NAT field, names the
internal IPv6 host. Before the knock the client reaches nothing; after it,
it reaches the internal service through the gateway's port (DNAT in ``ip6
fwknopd``, the forward accept in the host's ``inet`` forward chain); IPv4
stays closed; the grant ends on time. Without a route back from the internal
host, SNAT (``FORCE_SNAT`` to the gateway's inside address) and MASQUERADE
(``ENABLE_IPT_SNAT`` with an IPv4 ``SNAT_TRANSLATE_IP``, which an IPv6 grant
cannot use) get the replies home, for ``FORWARD_ALL`` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.netns import (
    CLIENT_IP6,
    GATEWAY_INTERNAL_IP6,
    INTERNAL_IP6,
    SERVER_IP,
    SERVER_IP6,
    Gateway,
    drop_forward_nft,
    drop_policy_nft,
    net_gateway,
)
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import OurFwknopd
from tests.helpers.wait import DEADLINE

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.usefixtures("namespaces")]

KEYS = generate_keys()
TIMEOUT = 10  # seconds a grant lasts: the checks made while it is open fit in it


def _client(tmp_path: Path, *profiles: tuple[str, int]) -> OurClient:
    client = OurClient(tmp_path / "client")
    for name, port in profiles:
        client.add_profile(name, KEYS.as_text(), host=SERVER_IP6, server_type="fwknop-tui",
                           allow_ip=CLIENT_IP6, access=[f"tcp/{port}"], username=name)  # fmt: skip
    return client


def _knock(client: OurClient, gateway: Gateway, name: str) -> None:
    sent = client.run(["send", name], ns=gateway.pair.client)
    assert sent.returncode == 0, sent.stderr


def _stanza(user: str, extra: str) -> str:
    return (f"SOURCE ANY\nREQUIRE_USERNAME {user}\n{KEYS.as_text()}"
            f"FW_ACCESS_TIMEOUT {TIMEOUT}\n{extra}")  # fmt: skip


def _daemon(gateway: Gateway, tmp_path: Path, access: str, conf: str) -> OurFwknopd:
    drop_policy_nft(gateway.pair.server)
    drop_forward_nft(gateway.pair.server)
    return OurFwknopd(
        gateway.pair.server,
        tmp_path / "srv",
        interface=gateway.pair.server_if,
        access_conf=access,
        conf_extra=conf,
        firewall="nftables",
    ).start()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with net_gateway("n6", ipv6=True) as made:
        yield made


def test_an_ipv6_client_reaches_the_internal_ipv6_service_until_the_timeout(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway.listen_internal(22)
    server = _daemon(gateway, tmp_path, _stanza("fwd", f"FORCE_NAT {INTERNAL_IP6} 22\n"),
                     "ENABLE_IPT_FORWARDING Y\n")  # fmt: skip
    assert "table ip fwknopd and ip6 fwknopd" in server.log()
    pair = gateway.pair
    assert not pair.tcp_open(40022, host=SERVER_IP6, timeout=0.5)
    assert not pair.tcp_open(22, host=INTERNAL_IP6, timeout=0.5)  # no forwarding either
    _knock(_client(tmp_path, ("fwd", 40022)), gateway, "fwd")
    assert pair.wait_open(40022, host=SERVER_IP6), server.log()
    assert server.wait_log(f"forwarded to {INTERNAL_IP6}:22")
    assert not pair.tcp_open(40022, host=SERVER_IP, timeout=0.5)  # IPv4 stays closed
    listing = pair.server.run(["nft", "list", "table", "ip6", "fwknopd"]).stdout.decode()
    assert f"{CLIENT_IP6} . tcp . 40022" in listing and INTERNAL_IP6 in listing
    assert pair.wait_closed(40022, host=SERVER_IP6, timeout=TIMEOUT + DEADLINE)
    assert server.stop() == 0
    tables = pair.server.run(["nft", "list", "tables"]).stdout.decode()
    assert "fwknopd" not in tables  # both NAT tables went with the daemon


def test_a_nat_request_names_the_internal_ipv6_host(gateway: Gateway, tmp_path: Path) -> None:
    """Our client's NAT field with an IPv6 host (``nat_access = "[2001:db8:1::2]:22"``)."""
    gateway.listen_internal(22)
    server = _daemon(gateway, tmp_path, _stanza("req", ""), "ENABLE_IPT_FORWARDING Y\n")
    client = OurClient(tmp_path / "client")
    client.add_profile("req", KEYS.as_text(), host=SERVER_IP6, server_type="fwknop-tui",
                       allow_ip=CLIENT_IP6, access=["tcp/22"], username="req",
                       nat_access=f"[{INTERNAL_IP6}]:22", nat_port=40025)  # fmt: skip
    assert not gateway.pair.tcp_open(40025, host=SERVER_IP6, timeout=0.5)
    _knock(client, gateway, "req")
    assert gateway.pair.wait_open(40025, host=SERVER_IP6), server.log()
    assert server.wait_log(f"forwarded to {INTERNAL_IP6}:22")
    assert server.stop() == 0


@pytest.fixture
def routeless() -> Iterator[Gateway]:
    """The internal host cannot route back to the client: only SNAT gets replies home."""
    with net_gateway("r6", internal_route=False, ipv6=True) as made:
        yield made


def test_snat_and_masquerade_get_ipv6_replies_home(routeless: Gateway, tmp_path: Path) -> None:
    gateway = routeless
    gateway.listen_internal(22, 2222, 3333)
    access = (_stanza("snat", f"FORCE_NAT {INTERNAL_IP6} 2222\nFORCE_SNAT {GATEWAY_INTERNAL_IP6}\n")
              + _stanza("masq", f"FORCE_NAT {INTERNAL_IP6} 22\n")
              + _stanza("all", "FORWARD_ALL Y\nFORCE_MASQUERADE Y\n"))  # fmt: skip
    # SNAT_TRANSLATE_IP is IPv4: the IPv6 grant of the second stanza is masqueraded instead
    conf = "ENABLE_IPT_FORWARDING Y\nENABLE_IPT_SNAT Y\nSNAT_TRANSLATE_IP 198.51.100.1\n"
    server = _daemon(gateway, tmp_path, access, conf)
    pair = gateway.pair
    assert not pair.tcp_open(40023, host=SERVER_IP6, timeout=0.5)
    client = _client(tmp_path, ("snat", 40023), ("masq", 40024), ("all", 1))
    _knock(client, gateway, "snat")
    assert pair.wait_open(40023, host=SERVER_IP6), server.log()
    _knock(client, gateway, "masq")
    assert pair.wait_open(40024, host=SERVER_IP6), server.log()
    listing = pair.server.run(["nft", "list", "table", "ip6", "fwknopd"]).stdout.decode()
    assert GATEWAY_INTERNAL_IP6 in listing  # snat6
    # FORWARD_ALL: the client routes through the gateway to any port of the internal host
    assert not pair.tcp_open(3333, host=INTERNAL_IP6, timeout=0.5)  # no grant names it
    _knock(client, gateway, "all")
    assert pair.wait_open(3333, host=INTERNAL_IP6), server.log()
    assert server.stop() == 0
