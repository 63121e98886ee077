"""firewalld NAT on a real kernel: fwknopd's NAT chains through firewalld's direct passthrough.

The gateway namespace runs firewalld 1.3 on its iptables backend (zone
``public``: it rejects what it does not allow, forwarded traffic included)
and our fwknopd with ``FIREWALL_TYPE firewalld`` and
``ENABLE_FIREWD_FORWARDING``, as nine of fwknop's own test configurations
have it. The real fwknop client cannot reach the internal host's service
before its NAT knock, reaches it through the gateway after, and cannot once
the access timeout has passed. With ``ENABLE_FIREWD_SNAT`` and an internal
host that has no route back, only the SNAT rule gets the replies home.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.firewalld import PrivateFirewalld, firewalld_missing, private_firewalld
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    INTERNAL_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    Gateway,
    net_gateway,
    stop_process,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd

pytestmark = REAL_KNOCK_MARKS

KEYS = generate_keys()
TIMEOUT = 6  # each firewall-cmd takes a while: the grant must outlive the first connect


def _gateway(route: bool) -> Iterator[Gateway]:
    if reason := firewalld_missing():
        pytest.skip(reason)
    with net_gateway("fn", internal_route=route) as made:
        yield made


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    yield from _gateway(True)


@pytest.fixture
def routeless() -> Iterator[Gateway]:
    yield from _gateway(False)


def _reaches(gateway: Gateway, port: int) -> bool:
    return gateway.pair.tcp_open(port, host=SERVER_IP, timeout=0.5)


def _start(gateway: Gateway, tmp_path: Path, firewalld: PrivateFirewalld, conf: str) -> OurFwknopd:
    return OurFwknopd(
        gateway.pair.server,
        tmp_path / "ours",
        interface=gateway.pair.server_if,
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\n",
        conf_extra=conf,
        firewall="firewalld",
        env=firewalld.env,
    ).start(timeout=60)


def _knock_nat(gateway: Gateway, tmp_path: Path) -> None:
    real_knock(gateway.pair.client, tmp_path / "home", SERVER_IP, "-A", "tcp/22",
               "-N", f"{INTERNAL_IP}:22", "--nat-port", "40022",
               keys=key_args(KEYS), allow=CLIENT_IP)  # fmt: skip


def _stop(server: OurFwknopd) -> int | None:
    assert server.proc is not None
    stop_process(server.proc, grace=90)  # the flush at exit is a firewall-cmd per command
    return server.proc.returncode


def test_a_nat_knock_through_firewalld_reaches_the_internal_service_until_the_timeout(
    gateway: Gateway, tmp_path: Path
) -> None:
    with private_firewalld(gateway.pair.server, tmp_path / "fwd") as firewalld:
        gateway.listen_internal(22)
        assert not _reaches(gateway, 40022)
        server = _start(gateway, tmp_path, firewalld, "ENABLE_FIREWD_FORWARDING Y\n")
        assert "NAT and forwarding" not in server.log()
        forward = firewalld.passthrough("-t", "filter", "-S", "FORWARD").splitlines()
        assert forward[1] == "-A FORWARD -j FWKNOP_FORWARD"  # before firewalld's own rules
        assert "-A PREROUTING -j FWKNOP_PREROUTING" in firewalld.passthrough(
            "-t", "nat", "-S", "PREROUTING")  # fmt: skip
        assert not _reaches(gateway, 40022)

        _knock_nat(gateway, tmp_path)
        assert wait_for(lambda: _reaches(gateway, 40022), timeout=30), server.log()
        dnat = firewalld.passthrough("-t", "nat", "-S", "FWKNOP_PREROUTING")
        assert "--dport 40022 -m comment --comment _exp_" in dnat
        assert f"-j DNAT --to-destination {INTERNAL_IP}:22" in dnat
        assert f"-s {CLIENT_IP}/32 -p tcp -m tcp --dport 22" in firewalld.passthrough(
            "-t", "filter", "-S", "FWKNOP_FORWARD")  # fmt: skip

        assert wait_for(lambda: not _reaches(gateway, 40022), timeout=30), server.log()
        assert "_exp_" not in firewalld.passthrough("-t", "nat", "-S", "FWKNOP_PREROUTING")
        assert _stop(server) == 0
        after = firewalld.passthrough("-t", "nat", "-S")
        assert "FWKNOP_PREROUTING" not in after  # FLUSH_FIREWD_AT_EXIT
        assert "-A PREROUTING -j PREROUTING_direct" in after  # firewalld's own rules stay


def test_firewalld_snat_gets_the_replies_home(routeless: Gateway, tmp_path: Path) -> None:
    gateway = routeless
    with private_firewalld(gateway.pair.server, tmp_path / "fwd") as firewalld:
        gateway.listen_internal(22)
        conf = (
            "ENABLE_FIREWD_FORWARDING Y\nENABLE_FIREWD_SNAT Y\n"
            f"SNAT_TRANSLATE_IP {gateway.gateway_internal_ip}\n"
        )
        server = _start(gateway, tmp_path, firewalld, conf)
        assert "-A POSTROUTING -j FWKNOP_POSTROUTING" in firewalld.passthrough(
            "-t", "nat", "-S", "POSTROUTING")  # fmt: skip
        _knock_nat(gateway, tmp_path)
        assert wait_for(lambda: _reaches(gateway, 40022), timeout=30), server.log()
        snat = firewalld.passthrough("-t", "nat", "-S", "FWKNOP_POSTROUTING")
        assert f"-j SNAT --to-source {gateway.gateway_internal_ip}" in snat
        assert wait_for(lambda: not _reaches(gateway, 40022), timeout=30), server.log()
        assert _stop(server) == 0
