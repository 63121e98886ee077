"""NAT and forwarding: planned, and made as fwknopd 2.6.10 makes it (iptables) or natively (nft).

``FWKNOPD`` holds the rule commands the real fwknopd 2.6.10 ran for each case
(from its ``-v -v`` log, in a namespace, knocked by the real client with the
same request); our iptables backend must run the same ones. The ``nat-*``
vectors' recorded ``iptables-save`` output is compared with ours on a real
kernel too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.access import load_access
from fwknop_server.config import load_server_config
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.errors import ConfigError
from fwknop_server.firewall import make_firewall
from fwknop_server.firewall.base import FirewallError, NatOpening
from fwknop_server.firewall.iptables import Iptables
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.firewall.nftables import Nftables
from fwknop_server.firewall.nftnat import NftNat, find_forward_chain
from fwknop_server.nat import NatPolicy, NatSettings, plan
from fwknop_server.nathost import resolve
from fwknop_server.processor import Processor, Settings
from fwknop_server.screen import LONG_WAY
from fwknop_server.vocab import Accepted, Grant, NatGrant, Packet, Reason, Refused, Snat

from fwknop_core import HmacKey, MessageType, NatAccess, RijndaelKey, SpaMessage, build_packet
from tests.helpers.netns import NetPair, net_pair
from tests.helpers.recorder import Recorder
from tests.helpers.vectors import vectors
from tests.helpers.wait import wait_for_async

KEY, HKEY = RijndaelKey(b"n" * 32), HmacKey(b"m" * 64)
STANZA = f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
NOW = 1_796_157_480
IP4 = ipaddress.IPv4Address
FWD = "ENABLE_IPT_FORWARDING Y\n"
LOCAL = "ENABLE_IPT_LOCAL_NAT Y\n"
SNAT_ON = "ENABLE_IPT_SNAT Y\n"
FORCE = "FORCE_NAT 198.18.0.60 2222\n"

# what the real fwknopd 2.6.10 ran for each case (see "about" in the file)
RECORDED = json.loads((Path(__file__).parents[1] / "data" / "fwknopd-nat.json").read_text())
# case: (fwknopd.conf extra, stanza extra, access, NAT field, local NAT, the commands we run)
FWKNOPD: dict[str, tuple[str, str, str, str | None, bool, list[str]]] = {
    c["id"]: (c["fwknopd_conf"], c["stanza"], c["access"], c["nat"], c["local_nat"],
              c.get("ours", c["fwknopd"]))
    for c in RECORDED["cases"]
}  # fmt: skip
# cases the real fwknopd refused: (fwknopd.conf extra, stanza extra, access, NAT, local, reason)
REFUSED = {
    c["id"]: (c["fwknopd_conf"], c["stanza"], c["access"], c["nat"], c["local_nat"],
              Reason[c["reason"]])
    for c in RECORDED["refused"]
}  # fmt: skip


def test_we_differ_from_fwknopds_rules_only_where_it_is_broken() -> None:
    assert {c["id"]: c["why"] for c in RECORDED["cases"] if "ours" in c}.keys() == {
        "force-snat-without-enable-ipt-snat",  # its SNAT command has no chain
        "forward-all-snat",  # its DNAT of everything to 0.0.0.0
        "forward-all-masquerade",
    }


def _setup(tmp_path: Path, conf: str, stanza: str, *, firewall: str = "iptables") -> Any:
    (tmp_path / "fwknopd.conf").write_text(f"FIREWALL_TYPE {firewall}\n{conf}")
    (tmp_path / "access.conf").write_text(STANZA + stanza)
    options = Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))
    return load(options)


def _packet(access: str, nat: str | None, local: bool, *, timeout: int = 0) -> Packet:
    message = SpaMessage.access_request(
        "198.18.0.2", access, username="u", nat=nat, local_nat=local, client_timeout=timeout,
        now=NOW,
    )  # fmt: skip
    return Packet(build_packet(message, KEY, hmac_key=HKEY).encode(), SRC, DST, 17, 40000, 62201)


def _decide(tmp_path: Path, case: tuple[Any, ...], firewall: Any) -> Accepted | Refused:
    conf, stanza, access, nat, local, _expected = case
    settings = _setup(tmp_path, conf, stanza)
    pipeline = settings.pipeline_for(ipv6=firewall.supports_ipv6, nat=firewall.supports_nat)
    processor = Processor(settings.stanzas, pipeline)
    decision = processor.process(_packet(access, nat, local), now=NOW)
    assert isinstance(decision, Accepted | Refused)
    return decision


def _with(case: str, conf: str) -> tuple[Any, ...]:
    """A case of ``FWKNOPD`` with another fwknopd.conf."""
    return (conf, *FWKNOPD[case][1:])


def _ours(fwknopd: str) -> list[str]:
    """fwknopd's ``-A CHAIN -t TABLE SPEC`` as our argv: ``iptables -w -t TABLE -A CHAIN SPEC``."""
    verb, chain, _t, table, *spec = fwknopd.split()
    return ["/usr/sbin/iptables", "-w", "-t", table, verb, chain, *spec]


@pytest.mark.parametrize("case", list(FWKNOPD))
def test_our_iptables_rules_are_the_ones_fwknopd_made(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf, _stanza, _access, _nat, _local, expected = FWKNOPD[case]
    run = Recorder()
    config = _setup(tmp_path, conf, "").config
    firewall = make_firewall(config, run=run)
    assert isinstance(firewall, Iptables) and firewall.supports_nat
    decision = _decide(tmp_path, FWKNOPD[case], firewall)
    assert isinstance(decision, Accepted), decision
    grant = decision.grant
    assert grant.nat is not None
    if grant.nat.address is None:
        grant = Grant(**{**_fields(grant), "nat": resolve(grant.nat)})
    run.calls.clear()
    with caplog.at_level(logging.INFO, "fwknop_server"):
        firewall.grant(grant, NOW)
    stamp = f"_exp_{grant.expires}"
    made = [
        [w.replace(stamp, "_exp_E") for w in argv]
        for argv in run.calls
        if argv[4] in ("-A", "-I") and argv[5].startswith("FWKNOP_")
    ]
    assert made == [_ours(line) for line in expected]
    added = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Added ")]
    assert len(added) == len(expected)


def _fields(grant: Grant) -> dict[str, Any]:
    return {name: getattr(grant, name) for name in grant.__dataclass_fields__}


@pytest.mark.parametrize("case", list(REFUSED))
def test_requests_fwknopd_refused_are_refused(case: str, tmp_path: Path) -> None:
    conf, stanza, access, nat, local, reason = REFUSED[case]
    config = _setup(tmp_path, conf, stanza).config
    firewall = make_firewall(config, run=Recorder())
    decision = _decide(tmp_path, (conf, stanza, access, nat, local, None), firewall)
    assert isinstance(decision, Refused) and decision.reason is reason


def test_fwknopds_log_lines_name_the_access_ports(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = Recorder()
    config = _setup(tmp_path, FWD + SNAT_ON, "").config
    firewall = make_firewall(config, run=run)
    decision = _decide(tmp_path, _with("nat-port", FWD + SNAT_ON), firewall)
    assert isinstance(decision, Accepted)
    with caplog.at_level(logging.INFO, "fwknop_server"):
        firewall.grant(decision.grant, NOW)
    exp = decision.grant.expires
    # fwknopd: the same three lines for this request (its MASQUERADE one says "SNAT")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Added")] == [
        f"Added FORWARD rule to FWKNOP_FORWARD for 198.18.0.2 -> 0.0.0.0/0 tcp/40022, "
        f"expires at {exp}",
        f"Added DNAT rule to FWKNOP_PREROUTING for 198.18.0.2 -> 0.0.0.0/0 tcp/40022, "
        f"expires at {exp}",
        f"Added SNAT rule to FWKNOP_MASQUERADE for 198.18.0.2 -> 0.0.0.0/0 tcp/40022, "
        f"expires at {exp}",
    ]


def test_the_nat_chains_are_made_at_start_as_fwknopd_makes_them(tmp_path: Path) -> None:
    run = Recorder(fail=("-S", "-C"))  # nothing exists yet
    config = _setup(tmp_path, FWD + SNAT_ON + "FLUSH_IPT_AT_INIT N\n", "").config
    firewall = make_firewall(config, run=run)
    firewall.start(NOW)
    made = [" ".join(argv[4:]) for argv in run.calls if argv[4] in ("-N", "-I")]
    assert made == [
        "-N FWKNOP_INPUT", "-I INPUT 1 -j FWKNOP_INPUT",
        "-N FWKNOP_FORWARD", "-I FORWARD 1 -j FWKNOP_FORWARD",
        "-N FWKNOP_PREROUTING", "-I PREROUTING 1 -j FWKNOP_PREROUTING",
        "-N FWKNOP_POSTROUTING", "-I POSTROUTING 1 -j FWKNOP_POSTROUTING",
        "-N FWKNOP_MASQUERADE", "-I POSTROUTING 1 -j FWKNOP_MASQUERADE",
    ]  # fmt: skip
    assert {argv[3] for argv in run.calls if "FWKNOP_PREROUTING" in argv} == {"nat"}
    # without ENABLE_IPT_SNAT the SNAT chains wait for a stanza that forces SNAT
    run = Recorder(fail=("-S", "-C"))
    config = _setup(tmp_path, FWD + "FLUSH_IPT_AT_INIT N\n", "").config
    make_firewall(config, run=run).start(NOW)
    # (listed, for expired rules an earlier run left there, but not made)
    assert not [a for a in run.calls if "FWKNOP_POSTROUTING" in a and {"-N", "-I"} & {*a}]
    run = Recorder(fail=("-S", "-C"))
    config = _setup(tmp_path, "FLUSH_IPT_AT_INIT N\n", "").config
    make_firewall(config, run=run).start(NOW)
    assert not [a for a in run.calls if "FWKNOP_FORWARD" in a]  # no NAT: no NAT chains


def test_a_nat_grant_expires_and_is_renewed_as_a_whole(tmp_path: Path) -> None:
    run = Recorder()
    config = _setup(tmp_path, FWD + SNAT_ON, "").config
    firewall = make_firewall(config, run=run)
    decision = _decide(tmp_path, _with("nat-port", FWD + SNAT_ON), firewall)
    assert isinstance(decision, Accepted)
    grant = decision.grant
    firewall.grant(grant, NOW)
    assert firewall.next_expiry() == grant.expires
    assert firewall.grant(grant, NOW + 1) == []  # open long enough already: nothing run
    run.calls.clear()
    later = Grant(**{**_fields(grant), "expires": grant.expires + 60})
    firewall.grant(later, NOW + 5)
    verbs = [argv[4] for argv in run.calls if argv[4] in ("-A", "-D")]
    assert verbs == ["-A"] * 3 + ["-D"] * 3  # the new rules first, then the old ones go
    assert all(f"_exp_{grant.expires}" in " ".join(a) for a in run.calls if a[4] == "-D")
    run.calls.clear()
    firewall.expire(later.expires)
    assert [argv[4] for argv in run.calls] == ["-D"] * 3
    assert firewall.nat_open == {} and firewall.next_expiry() is None


def test_a_nat_grant_is_made_whole_or_not_at_all(tmp_path: Path) -> None:
    run = Recorder(fail=("MASQUERADE",))
    config = _setup(tmp_path, FWD + SNAT_ON, "").config
    firewall = make_firewall(config, run=run)
    decision = _decide(tmp_path, _with("nat-port", FWD + SNAT_ON), firewall)
    assert isinstance(decision, Accepted)
    with pytest.raises(FirewallError):
        firewall.grant(decision.grant, NOW)
    verbs = [argv[4] for argv in run.calls if argv[4] in ("-A", "-D")]
    assert verbs == ["-A", "-A", "-A", "-D", "-D"]  # the two made are undone
    assert firewall.nat_open == {}


def test_flushing_removes_the_nat_chains_too(tmp_path: Path) -> None:
    run = Recorder(fail=("-D",))  # no jump rules left to delete
    config = _setup(tmp_path, FWD + SNAT_ON, "").config
    make_firewall(config, run=run).flush()
    flushed = [argv[5] for argv in run.calls if argv[4] == "-X"]
    assert flushed == [
        "FWKNOP_INPUT", "FWKNOP_FORWARD", "FWKNOP_PREROUTING", "FWKNOP_POSTROUTING",
        "FWKNOP_MASQUERADE",
    ]  # fmt: skip


def test_the_deep_scan_removes_expired_nat_rules_left_by_anyone(tmp_path: Path) -> None:
    class Chains(Recorder):
        def __call__(
            self, argv: Sequence[str], *, stdin: str | None = None
        ) -> tuple[int, str, str]:
            self.calls.append(list(argv))
            if "-S" in argv and "FWKNOP_PREROUTING" in argv:
                return (
                    0,
                    (
                        "-N FWKNOP_PREROUTING\n"
                        "-A FWKNOP_PREROUTING -s 198.18.0.9/32 -m comment --comment _exp_100 "
                        "-j DNAT --to-destination 10.0.0.1\n"
                        "-A FWKNOP_PREROUTING -s 198.18.0.8/32 -m comment --comment "
                        "_exp_9999999999 -j DNAT --to-destination 10.0.0.1\n"
                    ),
                    "",
                )
            return 0, "", ""

    run = Chains()
    config = _setup(tmp_path, FWD, "").config
    firewall = make_firewall(config, run=run)
    firewall.housekeeping(NOW)
    deleted = [argv for argv in run.calls if "-D" in argv]
    assert deleted == [[
        "/usr/sbin/iptables", "-w", "-t", "nat", "-D", "FWKNOP_PREROUTING", "-s",
        "198.18.0.9/32", "-m", "comment", "--comment", "_exp_100", "-j", "DNAT",
        "--to-destination", "10.0.0.1",
    ]]  # fmt: skip


# -- planning ----------------------------------------------------------------------


def test_the_plan_follows_fwknopd() -> None:
    on = NatSettings(forwarding=True, local=True)
    nat = NatAccess("198.18.0.50", 22)
    assert plan(None, on, MessageType.ACCESS, None, ("tcp", 22)) is None
    assert plan(None, on, MessageType.NAT_ACCESS, nat, ("tcp", 40022)) == NatGrant(
        False, "tcp", 40022, "198.18.0.50", 22, address=IP4("198.18.0.50")
    )
    forced = NatPolicy(force_nat=(IP4("198.18.0.60"), 2222))
    assert plan(forced, on, MessageType.ACCESS, None, ("tcp", 22)) == NatGrant(
        False, "tcp", 22, "198.18.0.60", 2222, address=IP4("198.18.0.60")
    )
    masq = NatPolicy(force_nat=(IP4("198.18.0.60"), 2222), force_masquerade=True)
    translate = NatSettings(forwarding=True, snat=True, translate_ip=IP4("203.0.113.1"))
    assert plan(masq, translate, MessageType.ACCESS, None, ("tcp", 22)).snat == Snat()  # type: ignore[union-attr]
    assert plan(None, translate, MessageType.NAT_ACCESS, nat, ("tcp", 22)).snat == Snat(  # type: ignore[union-attr]
        IP4("203.0.113.1")
    )
    # FORWARD_ALL with FORCE_MASQUERADE still takes SNAT_TRANSLATE_IP, as fwknopd does
    all_masq = NatPolicy(force_nat=(IP4(0), 0), force_masquerade=True, forward_all=True)
    grant = plan(all_masq, translate, MessageType.ACCESS, None, ("tcp", 22))
    assert grant is not None and grant.snat == Snat(IP4("203.0.113.1")) and not grant.dnat
    host = plan(None, on, MessageType.NAT_ACCESS, NatAccess("intranet.example", 22), ("tcp", 1))
    assert host is not None and host.address is None


def test_the_stanzas_nat_settings_are_checked_as_fwknopd_checks_them(tmp_path: Path) -> None:
    path = tmp_path / "access.conf"
    path.write_text(
        STANZA + "FORCE_NAT 198.18.0.300 22\n"  # 4
        + STANZA + "FORCE_NAT 198.18.0.3\n"  # 8
        + STANZA + "FORCE_SNAT 198.18.0.1\n"  # 12
        + STANZA + "FORCE_MASQUERADE Y\n"  # 16
        + STANZA + "FORCE_NAT 198.18.0.3 70000\nFORCE_SNAT nope\n"  # 20, 21
        + STANZA + "FORWARD_ALL Y\nFORCE_MASQUERADE Y\nDISABLE_DNAT Y\n"
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_access([path], nat_enabled=True)
    assert str(info.value).splitlines() == [
        f"{path}:4: FORCE_NAT IP '198.18.0.300' is not an IP address",
        f"{path}:8: FORCE_NAT '198.18.0.3' must be 'IP PORT'",
        f"{path}:12: FORCE_SNAT needs FORCE_NAT or FORWARD_ALL",
        f"{path}:16: FORCE_MASQUERADE needs FORCE_NAT or FORWARD_ALL",
        f"{path}:20: FORCE_NAT port '70000' is not 0..65535",
        f"{path}:21: FORCE_SNAT 'nope' is not an IP address",
    ]
    path.write_text(STANZA + "FORWARD_ALL Y\nFORCE_MASQUERADE Y\nDISABLE_DNAT Y\n")
    (stanza,) = load_access([path], nat_enabled=True)
    assert stanza.nat == NatPolicy(
        force_nat=(IP4(0), 0), force_masquerade=True, disable_dnat=True, forward_all=True
    )
    # without forwarding, fwknopd starts and such a stanza opens nothing: so do we, with a warning
    warnings: list[str] = []
    (useless,) = load_access([path], warnings=warnings)
    assert any("FORCE_MASQUERADE with FORWARD_ALL needs" in w for w in warnings)
    processor = Processor((useless,), Settings())
    for packet in (_packet("tcp/22", None, False), _packet("tcp/22", "198.18.0.50,22", False)):
        refused = processor.process(packet, now=NOW)
        assert isinstance(refused, Refused) and refused.reason is Reason.NAT, refused


def test_nat_refusals(tmp_path: Path) -> None:
    settings = _setup(tmp_path, FWD, FORCE)
    stanzas = settings.stanzas
    # a backend without NAT takes no NAT request, and no FORCE_NAT stanza grants anything
    without = Processor(stanzas, settings.pipeline_for(ipv6=False, nat=False))
    refused = without.process(_packet("tcp/22", None, False), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.NAT
    refused = without.process(_packet("tcp/22", "198.18.0.50,22", False), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.NAT
    # NAT for an IPv6 client: only where the firewall does IPv6 NAT (nftables)
    processor = Processor(stanzas, Settings(nat=NatSettings(forwarding=True), ipv6_grants=True))
    refused = processor.process(_v6_packet(), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.NAT_REFUSED
    assert "no NAT for IPv6 2001:db8::2" in refused.detail


def _v6_packet() -> Packet:
    message = SpaMessage.access_request(
        "2001:db8::2", "tcp/22", username="u", now=NOW, allow_ipv6=True
    )
    return Packet(build_packet(message, KEY, hmac_key=HKEY).encode(), SRC, DST)


V6_NAT = Settings(nat=NatSettings(forwarding=True), ipv6_grants=True, nat_ipv6=True)


@pytest.mark.parametrize(
    ("stanza", "conf", "outcome"),
    [
        ("FORCE_NAT 2001:db8:1::2 2222\n", FWD, ("2001:db8:1::2", None)),
        # SNAT_TRANSLATE_IP is IPv4: an IPv6 grant is masqueraded instead
        ("FORCE_NAT 2001:db8:1::2 22\n", FWD + SNAT_ON + "SNAT_TRANSLATE_IP 198.51.100.1\n",
         ("2001:db8:1::2", "masquerade")),
        ("FORCE_NAT 2001:db8:1::2 22\nFORCE_SNAT 2001:db8:1::1\n", FWD,
         ("2001:db8:1::2", "2001:db8:1::1")),
        # FORWARD_ALL's implied FORCE_NAT is IPv6's for an IPv6 client
        ("FORWARD_ALL Y\nFORCE_MASQUERADE Y\n", FWD, ("::", "masquerade")),
        # NAT does not cross IP versions
        ("FORCE_NAT 198.18.0.60 22\n", FWD, "NAT host 198.18.0.60 is not IPv6 like 2001:db8::2"),
        ("FORCE_NAT 2001:db8:1::2 22\nFORCE_SNAT 198.51.100.1\n", FWD,
         "FORCE_SNAT 198.51.100.1 is not IPv6"),
    ],
)  # fmt: skip
def test_an_ipv6_client_gets_nat_to_an_ipv6_host(
    tmp_path: Path, stanza: str, conf: str, outcome: object
) -> None:
    settings = _setup(tmp_path, conf, stanza, firewall="nftables")
    pipeline = settings.pipeline_for(ipv6=True, nat=True, nat_ipv6=True)
    decision = Processor(settings.stanzas, pipeline).process(_v6_packet(), now=NOW)
    if isinstance(outcome, str):
        assert isinstance(decision, Refused) and decision.reason is Reason.NAT_REFUSED
        assert outcome in decision.detail
        return
    assert isinstance(decision, Accepted) and decision.grant.nat is not None
    nat = decision.grant.nat
    host, snat = outcome  # type: ignore[misc]
    assert str(nat.address) == host
    if snat is None:
        assert nat.snat is None
    else:
        assert nat.snat is not None and str(nat.snat.to or "masquerade") == snat


def test_an_ipv4_client_is_not_sent_to_an_ipv6_host(tmp_path: Path) -> None:
    settings = _setup(tmp_path, FWD, "FORCE_NAT 2001:db8:1::2 22\n", firewall="nftables")
    processor = Processor(settings.stanzas, settings.pipeline_for(ipv6=True, nat=True,
                                                                  nat_ipv6=True))  # fmt: skip
    refused = processor.process(_packet("tcp/22", None, False), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.NAT_REFUSED
    assert "NAT host 2001:db8:1::2 is not IPv4 like 198.18.0.2" in refused.detail


def test_a_nat_host_name_is_resolved_in_the_clients_ip_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []

    def getaddrinfo(host: str, port: object, family: int, kind: int) -> list[Any]:
        asked.append(family)
        address = "2001:db8:1::9" if family == socket.AF_INET6 else "198.51.100.9"
        return [(family, kind, 6, "", (address, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    grant = NatGrant(False, "tcp", 40022, "internal.example", 22)
    assert str(resolve(grant, 6).address) == "2001:db8:1::9"
    assert str(resolve(grant).address) == "198.51.100.9"
    assert asked == [socket.AF_INET6, socket.AF_INET]


def test_an_ipv6_nat_grant_goes_to_our_ip6_table_and_the_v6_forward_set() -> None:
    nat = NftNat()
    nat.forward = type("C", (), {"family": "inet", "table": "filter", "chain": "forward"})()  # type: ignore[assignment]
    src6 = ipaddress.ip_address("2001:db8::2")
    grant = NatGrant(False, "tcp", 40022, "2001:db8:1::2", 22, snat=Snat(),
                     address=ipaddress.ip_address("2001:db8:1::2"))  # fmt: skip
    elements = nat.elements(NatOpening(src6, grant, NOW + 30), None, NOW)  # type: ignore[arg-type]
    added = {(e["add"]["element"]["family"], e["add"]["element"]["name"])
             for e in elements if "add" in e}  # fmt: skip
    assert added == {("inet", "fwknop_fwd6"), ("ip6", "dnat6"), ("ip6", "dnat6_port"),
                     ("ip6", "masq6")}  # fmt: skip
    # and the v6 objects are made beside the v4 ones, with IPv6 types and payloads
    commands = nat.table_commands((4, 6))
    maps = {c["add"]["map"]["name"]: c["add"]["map"] for c in commands if "map" in c.get("add", {})}
    assert maps["dnat6"]["family"] == "ip6" and maps["dnat6"]["map"] == "ipv6_addr"
    assert maps["dnat4"]["family"] == "ip" and maps["dnat4"]["map"] == "ipv4_addr"
    crossing = NatGrant(False, "tcp", 40022, "198.18.0.60", 22, address=IP4("198.18.0.60"))
    with pytest.raises(FirewallError, match="crosses IP versions"):
        nat.elements(NatOpening(src6, crossing, NOW + 30), None, NOW)  # type: ignore[arg-type]


class _NoNat(LogOnly):
    supports_nat = False


def test_the_nat_vectors_get_the_grants_fwknopd_gave(tmp_path: Path) -> None:
    cases = [c for c in vectors() if c["id"].startswith("nat-")]
    assert len(cases) == 7
    for case in cases:
        grant = _vector_grant(case, tmp_path)
        rules = case["server"]["fw_rules_after"]
        dnat = next(r for r in rules if "--to-destination" in r)
        to = re.search(r"--dport (\d+) .* --to-destination ([\d.]+):(\d+)", dnat)
        assert to is not None and grant.nat is not None
        assert (grant.nat.port, str(grant.nat.address), grant.nat.nat_port) == (
            int(to.group(1)), to.group(2), int(to.group(3)),
        )  # fmt: skip
        assert grant.nat.local == case["id"].startswith("nat-local")


def _vector_grant(case: dict[str, Any], tmp_path: Path) -> Grant:
    server = case["server"]
    (tmp_path / "fwknopd.conf").write_text(
        "FIREWALL_TYPE log\n" + server["fwknopd_conf_extra"].replace(";", "")
    )
    (tmp_path / "access.conf").write_text(server["access_conf"])
    options = Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))
    loaded = load(options)
    stanzas = loaded.stanzas
    settings = loaded.pipeline_for(ipv6=True, nat=True)  # the log backend's
    processor = Processor(stanzas, settings)
    timestamp = server["decoded_fields"]["timestamp"]
    decision = processor.process(
        Packet(server["received_spa_data"].encode(), SRC, DST), now=timestamp
    )
    assert isinstance(decision, Accepted), (case["id"], decision)
    return decision.grant


# -- nftables ------------------------------------------------------------------------


class NftRecorder:
    """An ``NftRunner`` that records documents and answers listings from a ruleset."""

    def __init__(self, ruleset: list[dict[str, Any]]) -> None:
        self.ruleset = {"nftables": ruleset}
        self.documents: list[dict[str, Any]] = []

    def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None:
        self.documents.append(document)
        command = document["nftables"][0]
        if "list" in command:
            return self.ruleset if "ruleset" in command["list"] else {"nftables": [
                {"chain": {"family": "inet", "table": "filter", "name": "input"}}]}  # fmt: skip
        return None


HOST = [
    {"table": {"family": "inet", "name": "filter"}},
    {"chain": {"family": "inet", "table": "filter", "name": "input", "type": "filter",
               "hook": "input", "policy": "drop"}},
    {"chain": {"family": "inet", "table": "filter", "name": "forward", "type": "filter",
               "hook": "forward", "policy": "drop"}},
]  # fmt: skip


def _nft(tmp_path: Path, conf: str) -> tuple[Nftables, NftRecorder]:
    run = NftRecorder(HOST)
    config = _setup(tmp_path, conf + "FLUSH_NFT_AT_INIT N\n", "", firewall="nftables").config
    firewall = make_firewall(config, nft_run=run)
    assert isinstance(firewall, Nftables) and firewall.supports_nat
    firewall._netlink = None  # every transaction through the recorder
    firewall.start(NOW)
    return firewall, run


def test_nftables_nat_objects_are_made_in_our_table_and_the_hosts_forward_chain(
    tmp_path: Path,
) -> None:
    _firewall, run = _nft(tmp_path, FWD)
    made = run.documents[-1]["nftables"]
    text = json.dumps(made)
    assert {"add": {"table": {"family": "ip", "name": "fwknopd"}}} in made
    assert {"add": {"table": {"family": "ip6", "name": "fwknopd"}}} in made  # the host is inet
    assert '"hook": "prerouting", "prio": -110' in text and '"prio": 90' in text
    inserts = [c["insert"]["rule"] for c in made if "insert" in c]
    assert {(r["family"], r["table"], r["chain"], r["comment"]) for r in inserts} == {
        ("inet", "filter", "forward", "fwknopd")
    }
    assert len(inserts) == 4  # two per IP version
    sets = {c["add"]["set"]["name"]: c["add"]["set"] for c in made if "set" in c.get("add", {})}
    assert sets["fwknop_fwd4"]["type"] == ["ipv4_addr", "inet_proto", "ipv4_addr", "inet_service"]
    assert sets["fwknop_fwd4"]["table"] == "filter"
    assert sets["fwknop_fwd6"]["type"] == ["ipv6_addr", "inet_proto", "ipv6_addr", "inet_service"]


def test_a_flush_at_start_does_not_list_the_ruleset_again_for_nat(tmp_path: Path) -> None:
    run = NftRecorder(HOST)
    config = _setup(tmp_path, FWD + "FLUSH_NFT_AT_INIT Y\n", "", firewall="nftables").config
    firewall = make_firewall(config, nft_run=run)
    firewall._netlink = None
    firewall.start(NOW)
    listings = [d for d in run.documents if "ruleset" in d["nftables"][0].get("list", {})]
    assert len(listings) == 2  # the input chain's search, and NAT's flush: not NAT's start
    inserts = [c["insert"]["rule"] for c in run.documents[-1]["nftables"] if "insert" in c]
    assert [(r["table"], r["chain"]) for r in inserts] == [("filter", "forward")] * 4


def test_an_nftables_nat_grant_is_one_transaction_of_timed_elements(tmp_path: Path) -> None:
    firewall, run = _nft(tmp_path, FWD + SNAT_ON)
    decision = _decide(tmp_path, _with("nat-port", FWD + SNAT_ON), firewall)
    assert isinstance(decision, Accepted)
    run.documents.clear()
    firewall.grant(decision.grant, NOW)
    (document,) = run.documents  # one transaction
    adds = [c["add"]["element"] for c in document["nftables"] if "add" in c]
    final = {a["name"]: a["elem"][0] for a in adds[1::2]}  # add, delete, add: the last add
    timeout = decision.grant.expires - NOW
    assert final == {
        "fwknop_fwd4": {"elem": {"val": {"concat": ["198.18.0.2", "tcp", "198.18.0.50", 22]},
                                 "timeout": timeout}},
        "dnat4": [{"elem": {"val": {"concat": ["198.18.0.2", "tcp", 40022]}, "timeout": timeout}},
                  "198.18.0.50"],
        "dnat4_port": [{"elem": {"val": {"concat": ["198.18.0.2", "tcp", 40022]},
                                 "timeout": timeout}}, 22],
        "masq4": {"elem": {"val": {"concat": ["198.18.0.2", "tcp", "198.18.0.50", 22]},
                           "timeout": timeout}},
    }  # fmt: skip
    assert firewall.next_expiry() == decision.grant.expires
    run.documents.clear()
    firewall.expire(decision.grant.expires)
    assert run.documents == [] and firewall.nat_open == {}  # the kernel ends it


def test_local_nat_in_nftables_opens_the_internal_port_in_the_input_set(tmp_path: Path) -> None:
    firewall, run = _nft(tmp_path, FWD + LOCAL)
    decision = _decide(tmp_path, FWKNOPD["nat-local"], firewall)
    assert isinstance(decision, Accepted)
    run.documents.clear()
    firewall.grant(decision.grant, NOW)
    names = [c["add"]["element"]["name"] for c in run.documents[0]["nftables"] if "add" in c]
    assert names == ["fwknop_in4"] * 2 + ["dnat4"] * 2 + ["dnat4_port"] * 2
    first = run.documents[0]["nftables"][0]["add"]["element"]["elem"][0]["elem"]["val"]
    assert first == {"concat": ["198.18.0.2", "tcp", 22]}


def test_the_forward_chain_is_found_like_the_input_chain() -> None:
    near = type("T", (), {"family": "inet", "table": "filter"})()
    assert repr(find_forward_chain({"nftables": HOST}, near)) == "inet filter forward"
    assert find_forward_chain({"nftables": HOST[:2]}, near) is None  # nothing filters forwarding
    two = [*HOST, {"chain": {"family": "ip", "table": "other", "name": "fwd", "type": "filter",
                             "hook": "forward", "policy": "drop"}}]  # fmt: skip
    assert repr(find_forward_chain({"nftables": two}, near)) == "inet filter forward"
    elsewhere = type("T", (), {"family": "ip", "table": "mine"})()
    with pytest.raises(FirewallError, match="which nftables forward chain"):
        find_forward_chain({"nftables": two}, elsewhere)


def test_destination_rule_puts_the_knocked_address_in_the_dnat_key() -> None:
    nat = NftNat(destination_rule=True)
    commands = nat.table_commands()
    maps = {c["add"]["map"]["name"]: c["add"]["map"] for c in commands if "map" in c.get("add", {})}
    assert maps["dnat4"]["type"] == ["ipv4_addr", "ipv4_addr", "inet_proto", "inet_service"]
    grant = NatGrant(False, "tcp", 40022, "198.18.0.50", 22, address=IP4("198.18.0.50"))
    opening = NatOpening(SRC, grant, NOW + 30, DST)
    elements = nat.elements(opening, None, NOW)
    assert elements[-4]["add"]["element"]["elem"][0][0]["elem"]["val"] == {
        "concat": ["198.18.0.2", "198.18.0.1", "tcp", 40022]
    }


# -- the daemon --------------------------------------------------------------------


def test_a_nat_host_name_is_resolved_off_the_event_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "fwknopd.conf").write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n{FWD}"
    )
    (tmp_path / "access.conf").write_text(STANZA)
    options = Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    daemon = Daemon(options, load(options), firewall=firewall, clock=lambda: NOW)
    resolved_on: list[str] = []

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        packets = [_packet("tcp/22", "localhost,22", False),
                   _packet("tcp/23", "no-such-host.invalid,22", False)]  # fmt: skip
        daemon.dispatch.handle_all(packets, NOW)
        assert firewall.nat_open == {}  # not yet: the names are being looked up
        # a resolver that gets no answer for the .invalid name retries for seconds
        await wait_for_async(
            lambda: firewall.nat_open and "nat_host" in daemon.refusals.counts, timeout=60
        )
        resolved_on.append("done")

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    assert resolved_on == ["done"]
    (opening,) = firewall.nat_open.values()
    assert opening.nat.address == IP4("127.0.0.1") and opening.nat.host == "localhost"
    assert daemon.refusals.counts["nat_host"] == 1
    assert "cannot resolve NAT host 'no-such-host.invalid'" in caplog.text
    assert "forwarded to 127.0.0.1:22" in caplog.text


def test_a_backend_without_nat_refuses_nat_requests(tmp_path: Path) -> None:
    (tmp_path / "access.conf").write_text(STANZA)
    options = Options(
        _conf(tmp_path, "FIREWALL_TYPE log\n" + FWD), access_paths=(tmp_path / "access.conf",)
    )
    without = Daemon(options, load(options), firewall=_NoNat(flush_at_init=False,
                                                             flush_at_exit=False))  # fmt: skip
    assert without.processor.settings.nat == NatSettings()
    logging_only = Daemon(options, load(options),
                          firewall=LogOnly(flush_at_init=False, flush_at_exit=False))  # fmt: skip
    assert logging_only.processor.settings.nat.forwarding


def _conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fwknopd.conf"
    path.write_text(text)
    return path


# -- a real kernel: our rules are the vectors' -----------------------------------------


class NsRunner:
    """A ``CommandRunner`` that runs each command inside a namespace."""

    def __init__(self, pair: NetPair) -> None:
        self.ns = pair.server

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        res = subprocess.run(
            self.ns.argv(argv), input=stdin, capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
        return res.returncode, res.stdout, res.stderr


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("nt") as made:
        yield made


@pytest.mark.netns
@pytest.mark.usefixtures("namespaces")
def test_on_a_real_kernel_our_rules_are_the_ones_the_vectors_recorded(
    pair: NetPair, tmp_path: Path
) -> None:
    run = NsRunner(pair)
    for case in (c for c in vectors() if c["id"].startswith("nat-")):
        grant = _vector_grant(case, tmp_path)
        extra = case["server"]["fwknopd_conf_extra"].replace(";", "")
        config = load_server_config(_conf(tmp_path, "FIREWALL_TYPE iptables\n" + extra))
        firewall = make_firewall(config, run=run)
        firewall.start(NOW)
        firewall.grant(grant, NOW)
        saved = pair.server.run(["iptables-save"]).stdout.decode().splitlines()
        ours = [re.sub(r"_exp_\d+", "_exp_E", line) for line in saved if "FWKNOP" in line]
        recorded = [re.sub(r"_exp_\d+", "_exp_E", r) for r in case["server"]["fw_rules_after"]]
        assert ours == recorded, case["id"]
        firewall.stop()
        assert "FWKNOP" not in pair.server.run(["iptables-save"]).stdout.decode()


def test_nat_that_cannot_work_here_is_said_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fwknop_server.nathost as nat_module

    forward = tmp_path / "ip_forward"
    monkeypatch.setattr(nat_module, "_IP_FORWARD", forward)
    on = NatSettings(forwarding=True)
    forward.write_text("0\n")
    assert "net.ipv4.ip_forward is 0" in str(nat_module.forwarding_problem(on, True, "nftables"))
    forward.write_text("1\n")
    assert nat_module.forwarding_problem(on, True, "nftables") is None
    assert nat_module.forwarding_problem(NatSettings(local=True), True, "x") is None
    assert nat_module.forwarding_problem(NatSettings(), False, "pf") is None
    assert "the pf firewall does no NAT" in str(nat_module.forwarding_problem(on, False, "pf"))


def test_nat_command_and_gnupg_stanzas_keep_junk_on_the_cheap_path(tmp_path: Path) -> None:
    """The screen refuses junk as the stanza-by-stanza path would, without leaving it."""
    home = tmp_path / "gnupg"
    home.mkdir()
    gpg_hmac = HmacKey(b"g" * 64)
    text = (
        STANZA
        + STANZA + FORCE  # a NAT stanza
        + STANZA + "ENABLE_CMD_EXEC Y\n"
        + f"SOURCE ANY\nGPG_HOME_DIR {home}\nGPG_ALLOW_NO_PW Y\nGPG_DISABLE_SIG Y\n"
        f"HMAC_KEY_BASE64 {gpg_hmac.to_base64()}\n"
    )  # fmt: skip
    path = tmp_path / "access.conf"
    path.write_text(text)
    processor = Processor(load_access([path], nat_enabled=True), Settings())
    for size in (204, 300, 399, 400, 640):  # Rijndael-sized, then GnuPG-sized
        junk = ("8" + "A1b/" * 200)[:size].encode()
        screened = processor.screen.check(junk, SRC)
        assert isinstance(screened, Refused), size  # decided on the cheap path
        slow = processor.process(Packet(junk, SRC, screened=LONG_WAY), 0)
        assert screened == slow, size
        assert screened.reason is Reason.HMAC_MISMATCH
        assert processor.screen.check(junk, SRC) is screened  # the same object: a flood is counted
    rijndael_sized = processor.screen.check(b"8" + b"A" * 203, SRC)
    assert isinstance(rijndael_sized, Refused)
    assert rijndael_sized.attempts[-1] == (4, Reason.NO_DECRYPTION, "Rijndael")


def test_a_reload_that_changes_nat_says_it_needs_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    (tmp_path / "access.conf").write_text(STANZA)
    options = Options(conf, access_paths=(tmp_path / "access.conf",))
    no_nat = _NoNat(flush_at_init=False, flush_at_exit=False)
    daemon = Daemon(options, load(options), firewall=no_nat, clock=lambda: NOW)
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n{FWD}")
    (tmp_path / "access.conf").write_text(STANZA + FORCE)
    with caplog.at_level(logging.WARNING, "fwknop_server"):
        daemon.reload()
    assert "settings changed (ENABLE_IPT_FORWARDING): restart fwknopd to apply them" in caplog.text
    # until then the firewall (made without NAT) gets no NAT grant, forced or asked for
    refused = daemon.processor.process(_packet("tcp/22", None, False), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.NAT
