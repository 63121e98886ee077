"""Issue 11 item 7: ENABLE_DESTINATION_RULE in the nftables backend, as iptables honours it.

With it, a grant opens the port only on the address the knock was sent to
(fwknopd's ``-d DST``): the element goes to a set keyed by source,
destination, protocol and port, matched by a rule of its own. A grant whose
destination is not known (UDP server) opens for any destination, as
fwknopd's ``-d 0.0.0.0/0``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from fwknop_server.config import load_server_config
from fwknop_server.firewall import Opening, make_firewall
from fwknop_server.firewall.netlink import ElementCommand, element_key
from fwknop_server.firewall.nftables import Nftables
from fwknop_server.firewall.nftrules import NftTarget
from fwknop_server.vocab import Grant

from fwknop_core import MessageType
from tests.helpers.recorder import Recorder
from tests.server.test_firewall_rules import CHAIN, FakeNft

SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
WHERE = {"family": "inet", "table": "filter"}


def _grant(destination: Any, *, src: Any = SRC) -> Grant:
    return Grant(src, destination, (("tcp", 22),), 30, 1030, 1, "u", MessageType.ACCESS)


def _match(right: str, *keys: str, family: str = "ip") -> dict[str, Any]:
    concat = [{"payload": {"protocol": family, "field": k}} for k in keys]
    concat += [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]
    return {"match": {"op": "==", "left": {"concat": concat}, "right": right}}


def test_the_destination_sets_and_rules_json() -> None:
    target = NftTarget("inet", "filter", "input", destination=True)
    sets = {c["add"]["set"]["name"]: c["add"]["set"]["type"] for c in target.set_objects()}
    assert sets == {
        "fwknop_in4": ["ipv4_addr", "inet_proto", "inet_service"],
        "fwknop_dst4": ["ipv4_addr", "ipv4_addr", "inet_proto", "inet_service"],
        "fwknop_in6": ["ipv6_addr", "inet_proto", "inet_service"],
        "fwknop_dst6": ["ipv6_addr", "ipv6_addr", "inet_proto", "inet_service"],
    }
    rules = [r["insert"]["rule"]["expr"][0] for r in target.rules()]
    assert rules == [
        _match("@fwknop_dst6", "saddr", "daddr", family="ip6"),
        _match("@fwknop_in6", "saddr", family="ip6"),
        _match("@fwknop_dst4", "saddr", "daddr"),
        _match("@fwknop_in4", "saddr"),
    ]
    plain = NftTarget("inet", "filter", "input")
    assert [c["add"]["set"]["name"] for c in plain.set_objects()] == ["fwknop_in4", "fwknop_in6"]
    assert len(plain.rules()) == 2


def test_a_grant_with_a_destination_goes_to_the_destination_set(tmp_path: Path) -> None:
    fake = FakeNft([CHAIN])
    fw = Nftables(fake, flush_at_init=False, destination_rule=True)
    fw.start(now=1000)
    fake.sent.clear()
    fw.grant(_grant(DST), now=1000)
    fw.grant(_grant(None, src=ipaddress.ip_address("198.18.0.3")), now=1000)  # UDP server
    added = [doc["nftables"][0]["add"]["element"] for doc in fake.sent]
    assert added == [
        {**WHERE, "name": "fwknop_dst4", "elem": [{"elem": {
            "val": {"concat": ["198.18.0.2", "198.18.0.1", "tcp", 22]}, "timeout": 30}}]},
        {**WHERE, "name": "fwknop_in4", "elem": [{"elem": {
            "val": {"concat": ["198.18.0.3", "tcp", 22]}, "timeout": 30}}]},
    ]  # fmt: skip


def test_the_netlink_element_of_a_destination_grant_carries_the_destination() -> None:
    target = NftTarget("inet", "filter", "input", destination=True)
    grant = Opening(SRC, "tcp", 22, 1030, DST)
    (command,) = target.grant_commands([(grant, None)], 1000)
    assert command == ElementCommand(True, "inet", "filter", "fwknop_dst4",
                                     element_key(SRC, "tcp", 22, DST), 30_000)  # fmt: skip
    assert element_key(SRC, "tcp", 22, DST) == (
        SRC.packed + DST.packed + bytes((6, 0, 0, 0)) + (22).to_bytes(2, "big") + b"\0\0"
    )
    # an IPv4 allow IP knocked over IPv6: no destination of its family, the plain set
    mixed = Opening(SRC, "tcp", 22, 1030, ipaddress.ip_address("2001:db8::1"))
    assert target.grant_commands([(mixed, None)], 1000)[0].set_name == "fwknop_in4"


def test_the_backend_reads_enable_destination_rule(tmp_path: Path) -> None:
    path = tmp_path / "fwknopd.conf"
    path.write_text(
        f"FWKNOP_RUN_DIR {tmp_path}\nFIREWALL_TYPE nftables\nENABLE_DESTINATION_RULE Y\n"
    )
    fw = make_firewall(load_server_config(path), run=Recorder(), nft_run=FakeNft([CHAIN]))
    assert isinstance(fw, Nftables) and fw.destination_rule


def test_a_restart_adopts_destination_grants_and_remakes_rules_of_other_settings() -> None:
    # an earlier run without ENABLE_DESTINATION_RULE left its two rules
    ours = [{"handle": 9, "comment": "fwknopd"}, {"handle": 10, "comment": "fwknopd"}]
    fake = FakeNft([CHAIN], ours)
    fake.sets = {
        "fwknop_dst4": [{"elem": {"val": {"concat": ["198.18.0.2", "198.18.0.1", "tcp", 22]},
                                  "timeout": 60, "expires": 42}}],
    }  # fmt: skip
    fw = Nftables(fake, flush_at_init=False, destination_rule=True)
    fw.start(now=1000)
    (opening,) = fw.open.values()
    assert (opening.source, opening.destination, opening.port, opening.expires) == (
        SRC, DST, 22, 1042)  # fmt: skip
    commands = fake.sent[0]["nftables"]
    deleted = [c["delete"]["rule"]["handle"] for c in commands if "delete" in c]
    inserted = [c for c in commands if "insert" in c]
    assert deleted == [9, 10] and len(inserted) == 4
