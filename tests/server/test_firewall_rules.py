"""The exact nft JSON and iptables argv each backend sends (no root; e2e tests apply them)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from fwknop_server.config import ChainSpec
from fwknop_server.firewall import FirewallError, Opening
from fwknop_server.firewall.iptables import Iptables
from fwknop_server.firewall.iptnat import IptablesNat, NatChains
from fwknop_server.firewall.iptrules import IptablesRules, parse_rule
from fwknop_server.firewall.netlink import ElementCommand, acknowledgements, batch, element_key
from fwknop_server.firewall.nftables import Nftables
from fwknop_server.firewall.nftrules import NftTarget, find_input_chain
from fwknop_server.vocab import Grant

from fwknop_core import MessageType

SRC = ipaddress.ip_address("198.18.0.2")
INPUT = ChainSpec("ACCEPT", "filter", "INPUT", 1, "FWKNOP_INPUT", 1)


def _grant(*ports: tuple[str, int], expires: int = 1030, src: Any = SRC) -> Grant:
    return Grant(src, None, ports, 30, expires, 1, "u", MessageType.ACCESS)


# -- nftables -------------------------------------------------------------------


def test_nft_set_and_rule_json() -> None:
    target = NftTarget("inet", "filter", "input")
    assert target.set_objects()[0] == {
        "add": {
            "set": {
                "family": "inet",
                "table": "filter",
                "name": "fwknop_in4",
                "type": ["ipv4_addr", "inet_proto", "inet_service"],
                "flags": ["timeout"],
            }
        }
    }
    assert target.set_objects()[1]["add"]["set"]["type"][0] == "ipv6_addr"
    assert target.rule(4) == {
        "insert": {
            "rule": {
                "family": "inet",
                "table": "filter",
                "chain": "input",
                "comment": "fwknopd",
                "expr": [
                    {
                        "match": {
                            "op": "==",
                            "left": {
                                "concat": [
                                    {"payload": {"protocol": "ip", "field": "saddr"}},
                                    {"meta": {"key": "l4proto"}},
                                    {"payload": {"protocol": "th", "field": "dport"}},
                                ]
                            },
                            "right": "@fwknop_in4",
                        }
                    },
                    {"accept": None},
                ],
            }
        }
    }
    assert NftTarget("ip", "filter", "input").versions == (4,)


class FakeNft:
    """Records documents; answers list commands from a canned ruleset."""

    def __init__(self, chains: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None):
        self.chains = chains
        self.rules = rules or []
        self.sets: dict[str, list[Any]] = {}
        self.sent: list[dict[str, Any]] = []

    def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None:
        cmd = document["nftables"][0]
        if "list" in cmd:
            what = cmd["list"]
            if "ruleset" in what:
                return {"nftables": [{"chain": c} for c in self.chains]}
            if "chain" in what:
                return {"nftables": [{"chain": self.chains[0]}, *({"rule": r} for r in self.rules)]}
            name = what["set"]["name"]
            if name not in self.sets:
                raise FirewallError("no such set")
            return {"nftables": [{"set": {"name": name, "elem": self.sets[name]}}]}
        self.sent.append(document)
        return None


CHAIN = {"family": "inet", "table": "filter", "name": "input", "hook": "input", "type": "filter",
         "policy": "drop"}  # fmt: skip


def _add_elem(proto: str, port: int, timeout: int) -> dict[str, Any]:
    value = {"concat": ["198.18.0.2", proto, port]}
    return {
        "add": {
            "element": {
                "family": "inet",
                "table": "filter",
                "name": "fwknop_in4",
                "elem": [{"elem": {"val": value, "timeout": timeout}}],
            }
        }
    }


def test_nft_start_grant_extend_flush() -> None:
    fake = FakeNft([CHAIN])
    fw = Nftables(fake, flush_at_init=False)
    fw.start(now=1000)
    (start,) = fake.sent
    kinds = [next(iter(next(iter(c.values())))) for c in start["nftables"]]
    assert kinds == ["set", "set", "rule", "rule"]  # both sets, then both rules, v6 rule first
    assert start["nftables"][2]["insert"]["rule"]["expr"][0]["match"]["right"] == "@fwknop_in6"

    fake.sent.clear()
    fw.grant(_grant(("tcp", 22), ("udp", 53)), now=1000)
    assert fake.sent == [{"nftables": [_add_elem("tcp", 22, 30), _add_elem("udp", 53, 30)]}]

    fake.sent.clear()
    assert fw.grant(_grant(("tcp", 22), expires=1020), now=1010) == []  # open long enough already
    assert fake.sent == []
    fw.grant(_grant(("tcp", 22), expires=1100), now=1010)
    (extend,) = fake.sent
    verbs = [next(iter(c)) for c in extend["nftables"]]
    assert verbs == ["add", "delete", "add"]  # replaced in one transaction
    assert extend["nftables"][2]["add"]["element"]["elem"][0]["elem"]["timeout"] == 90

    fake.rules = [{"handle": 7, "comment": "fwknopd"}, {"handle": 3, "comment": "someone else"}]
    fake.sets = {"fwknop_in4": [], "fwknop_in6": []}
    fake.sent.clear()
    fw.flush()
    assert fake.sent == [
        {
            "nftables": [
                {"delete": {"rule": {"family": "inet", "table": "filter", "chain": "input",
                                     "handle": 7}}},
                {"delete": {"set": {"family": "inet", "table": "filter", "name": "fwknop_in4"}}},
                {"delete": {"set": {"family": "inet", "table": "filter", "name": "fwknop_in6"}}},
            ]
        }
    ]  # fmt: skip
    assert fw.open == {}


def test_nft_adopts_open_grants_after_a_restart() -> None:
    fake = FakeNft(
        [CHAIN], [{"handle": 9, "comment": "fwknopd"}, {"handle": 10, "comment": "fwknopd"}]
    )
    fake.sets = {
        "fwknop_in4": [{"elem": {"val": {"concat": ["198.18.0.2", "tcp", 22]}, "timeout": 60,
                                 "expires": 42}}],
        "fwknop_in6": [],
    }  # fmt: skip
    fw = Nftables(fake, flush_at_init=False)
    fw.start(now=1000)
    assert [(str(o.source), o.proto, o.port, o.expires) for o in fw.open.values()] == [
        ("198.18.0.2", "tcp", 22, 1042)
    ]
    # the rules (one per family) exist already: only the (idempotent) sets are sent
    assert [next(iter(next(iter(c.values())))) for c in fake.sent[0]["nftables"]] == ["set", "set"]


def test_nft_ip_table_cannot_open_for_ipv6() -> None:
    fake = FakeNft([{**CHAIN, "family": "ip"}])
    fw = Nftables(fake, flush_at_init=False)
    fw.start(now=0)
    assert not fw.supports_ipv6
    with pytest.raises(FirewallError, match="IPv6"):
        fw.grant(_grant(("tcp", 22), src=ipaddress.ip_address("2001:db8::2")), now=0)


def test_finding_the_input_chain() -> None:
    base = {"family": "inet", "table": "filter", "hook": "input", "type": "filter"}
    one = {"nftables": [{"chain": {**base, "name": "input"}}]}
    assert repr(find_input_chain(one)) == "inet filter input"
    two = {"nftables": [{"chain": {**base, "name": "a", "policy": "accept"}},
                        {"chain": {**base, "name": "b", "policy": "drop"}}]}  # fmt: skip
    assert find_input_chain(two).chain == "b"  # the one that drops holds the policy
    with pytest.raises(FirewallError, match="set NFT_TABLE"):
        find_input_chain({"nftables": []})
    ambiguous = {"nftables": [{"chain": {**base, "name": "a"}}, {"chain": {**base, "name": "b"}}]}
    with pytest.raises(FirewallError, match="found: inet filter a, inet filter b"):
        find_input_chain(ambiguous)


# -- iptables -------------------------------------------------------------------

IPT = "/usr/sbin/iptables"


def test_iptables_argv_follow_fwknopds_templates() -> None:
    rules = IptablesRules(IPT, INPUT)
    opening = Opening(SRC, "tcp", 22, 1795268159)
    assert rules.add(opening) == [
        IPT, "-w", "-t", "filter", "-A", "FWKNOP_INPUT", "-p", "tcp", "-s", "198.18.0.2",
        "-d", "0.0.0.0/0", "--dport", "22", "-m", "comment", "--comment", "_exp_1795268159",
        "-j", "ACCEPT",
    ]  # fmt: skip
    assert IptablesRules(IPT, INPUT, prepend=True).add(opening)[4] == "-I"
    assert rules.add_jump() == [IPT, "-w", "-t", "filter", "-I", "INPUT", "1", "-j",
                                "FWKNOP_INPUT"]  # fmt: skip
    assert rules.check_jump() == [IPT, "-w", "-t", "filter", "-C", "INPUT", "-j", "FWKNOP_INPUT"]
    assert rules.delete(["-p", "tcp"]) == [IPT, "-w", "-t", "filter", "-D", "FWKNOP_INPUT",
                                           "-p", "tcp"]  # fmt: skip


class FakeRun:
    """Answers iptables commands like a real chain would (enough for the backend's logic)."""

    def __init__(self, chain_exists: bool = False, listing: str = "") -> None:
        self.calls: list[list[str]] = []
        self.chain_exists = chain_exists
        self.listing = listing
        self.jumps = 0

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        assert stdin is None  # iptables reads nothing
        args = list(argv)
        self.calls.append(args)
        verb = args[4]
        if verb == "-S":
            return (0, self.listing, "") if self.chain_exists else (1, "", "No chain")
        if verb == "-N":
            self.chain_exists = True
        if verb == "-C":
            return (0 if self.jumps else 1, "", "")
        if verb == "-I" and args[5] == "INPUT":
            self.jumps += 1
        if verb == "-D" and args[5] == "INPUT":
            if not self.jumps:
                return 1, "", "no rule"
            self.jumps -= 1
        if verb in ("-F", "-X") and not self.chain_exists:
            return 1, "", "No chain"
        if verb == "-X":
            self.chain_exists = False
        return 0, "", ""


def _verbs(run: FakeRun) -> list[str]:
    return [" ".join(c[4:6]) for c in run.calls]


def test_iptables_start_flushes_then_creates_chain_and_jump() -> None:
    run = FakeRun(chain_exists=True)
    run.jumps = 2  # two stale jumps from an earlier run
    fw = Iptables(run, IptablesRules(IPT, INPUT), flush_at_init=True)
    fw.start(now=1000)
    assert _verbs(run) == [
        "-D INPUT", "-D INPUT", "-D INPUT",  # every jump, until there is none
        "-F FWKNOP_INPUT", "-X FWKNOP_INPUT",
        "-S FWKNOP_INPUT", "-N FWKNOP_INPUT",
        "-C INPUT", "-I INPUT",
    ]  # fmt: skip


def test_iptables_grant_extend_and_expire_by_timer() -> None:
    run = FakeRun(chain_exists=True)
    run.jumps = 1
    fw = Iptables(run, IptablesRules(IPT, INPUT), flush_at_init=False)
    fw.start(now=1000)
    run.calls.clear()
    fw.grant(_grant(("tcp", 22), expires=1030), now=1000)
    fw.grant(_grant(("tcp", 22), expires=1060), now=1010)
    assert [(c[4], c[-3]) for c in run.calls] == [
        ("-A", "_exp_1030"),
        ("-A", "_exp_1060"),  # the longer grant goes in ...
        ("-D", "_exp_1030"),  # ... and the old rule goes: no duplicates
    ]
    assert fw.next_expiry() == 1060
    run.calls.clear()
    assert fw.expire(now=1059) == []
    assert [o.port for o in fw.expire(now=1060)] == [22]
    assert [(c[4], c[-3]) for c in run.calls] == [("-D", "_exp_1060")]
    assert fw.next_expiry() is None


def test_iptables_restart_adopts_valid_rules_and_removes_expired_ones() -> None:
    listing = (
        "-N FWKNOP_INPUT\n"
        "-A FWKNOP_INPUT -s 198.18.0.2/32 -p tcp -m tcp --dport 22 -m comment "
        "--comment _exp_2000 -j ACCEPT\n"
        "-A FWKNOP_INPUT -s 198.18.0.3/32 -p udp -m udp --dport 53 -m comment "
        "--comment _exp_900 -j ACCEPT\n"
    )
    run = FakeRun(chain_exists=True, listing=listing)
    run.jumps = 1
    fw = Iptables(run, IptablesRules(IPT, INPUT), flush_at_init=False)
    fw.start(now=1000)
    assert [(str(o.source), o.port, o.expires) for o in fw.open.values()] == [
        ("198.18.0.2", 22, 2000)
    ]
    deleted = [c for c in run.calls if c[4] == "-D"]
    assert deleted == [
        [IPT, "-w", "-t", "filter", "-D", "FWKNOP_INPUT", "-s", "198.18.0.3/32", "-p", "udp",
         "-m", "udp", "--dport", "53", "-m", "comment", "--comment", "_exp_900", "-j", "ACCEPT"]
    ]  # fmt: skip


def test_parse_rule() -> None:
    parsed = parse_rule(
        '-A FWKNOP_INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 443 -m comment --comment "_exp_5" '
        "-j ACCEPT"
    )
    assert parsed is not None
    key, expires, spec = parsed
    assert (str(key[0]), key[1], key[2], expires) == ("10.0.0.1", "tcp", 443, 5)
    assert spec[:2] == ["-s", "10.0.0.1/32"]
    assert parse_rule("-N FWKNOP_INPUT") is None
    assert parse_rule("-A FWKNOP_INPUT -s 10.0.0.1/32 -j ACCEPT") is None


def test_icmp_access_is_skipped_not_fatal() -> None:
    fake = FakeNft([CHAIN])
    fw = Nftables(fake, flush_at_init=False)
    fw.start(now=0)
    fake.sent.clear()
    assert fw.grant(_grant(("icmp", 8)), now=0) == []
    assert fake.sent == []


# -- nftables over netlink ----------------------------------------------------------

# what libnftables 1.0.6 sent for `add element inet filter fwknop_in4 { 198.18.0.2 . tcp .
# 1001 timeout 300s }` (strace of nft_run_cmd_from_buffer): batch begin, NEWSETELEM, batch end
_TRACE_BEGIN = bytes.fromhex("14000000 10000100 00000000 00000000 0000000a")
_TRACE_ELEM = bytes.fromhex(
    "60000000 0c0a0104 01000000 00000000 01000000"  # header (seq 1), nfgenmsg (inet)
    "0b000100 66696c74 65720000"  # NFTA_SET_ELEM_LIST_TABLE "filter"
    "0f000200 66776b6e 6f705f69 6e340000"  # NFTA_SET_ELEM_LIST_SET "fwknop_in4"
    "08000400 00000005"  # NFTA_SET_ELEM_LIST_SET_ID (only for sets made in the same batch)
    "28000380 24000180 0c000400 00000000 000493e0"  # elements, element, timeout 300000 ms
    "14000180 10000100 c6120002 06000000 03e90000"  # key: 198.18.0.2 . 6 . 1001, padded
)
_TRACE_END = bytes.fromhex("14000000 11000100 02000000 00000000 0000000a")


def test_a_grant_over_netlink_is_the_batch_libnftables_sends() -> None:
    key = element_key(SRC, "tcp", 1001)
    assert key == bytes.fromhex("c6120002 06000000 03e90000")
    sent = batch([ElementCommand(True, "inet", "filter", "fwknop_in4", key, 300_000)])
    # ours asks for an acknowledgement (flags 0x405, not 0x401) and leaves out the set id
    expected = _TRACE_ELEM.replace(bytes.fromhex("08000400 00000005"), b"")
    expected = struct.pack("=I", len(expected)) + expected[4:6] + b"\x05\x04" + expected[8:]
    assert sent == _TRACE_BEGIN + expected + _TRACE_END
    delete = batch([ElementCommand(False, "ip", "filter", "fwknop_in4", key)], first_seq=40)
    header = struct.unpack_from("=IHHII", delete, 20)
    assert header[1:4] == (0x0A0E, 0x0005, 41)  # DELSETELEM, request + ack, seq 41
    assert delete[36] == 2  # NFPROTO_IPV4 for an ip table
    assert b"\x0c\x00\x04\x00" not in delete  # no timeout on a delete


def test_acknowledgements_are_read_by_sequence_number() -> None:
    ack = struct.pack("=IHHII", 36, 2, 0x100, 7, 0) + struct.pack("=i", 0) + b"\0" * 16
    error = struct.pack("=IHHII", 36, 2, 0, 8, 0) + struct.pack("=i", -2) + b"\0" * 16
    assert acknowledgements(ack + error) == [(7, 0), (8, -2)]
    assert acknowledgements(b"\x00" * 10) == []


def test_nft_grants_go_over_netlink_when_it_is_there() -> None:
    sent: list[list[ElementCommand]] = []
    fw = Nftables(FakeNft([CHAIN]), netlink=sent.append, flush_at_init=False)
    fw.start(now=1000)
    assert fw.in_process
    fw.grant(_grant(("tcp", 22)), now=1000)
    fw.grant(_grant(("tcp", 22), expires=1100), now=1010)
    key = element_key(SRC, "tcp", 22)
    assert sent == [
        [ElementCommand(True, "inet", "filter", "fwknop_in4", key, 30_000)],
        [  # extended: add (a no-op), delete, add with the new timeout, in one transaction
            ElementCommand(True, "inet", "filter", "fwknop_in4", key, 20_000),
            ElementCommand(False, "inet", "filter", "fwknop_in4", key, 0),
            ElementCommand(True, "inet", "filter", "fwknop_in4", key, 90_000),
        ],
    ]
    assert not Nftables(FakeNft([CHAIN])).in_process  # JSON through a fake: not in process


def test_iptables_fw_list_shows_each_chain_as_fwknopd_does() -> None:
    """--fw-list: -L --line-numbers -n of the input chain, the NAT chains, then ip6tables'."""
    calls: list[list[str]] = []

    def run(argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        calls.append(list(argv))
        chain = argv[argv.index("-L") + 1]
        if chain == "FWKNOP_MASQUERADE":
            return 1, "", "iptables: No chain/target/match by that name.\n"
        return 0, f"Chain {chain} (1 references)\nnum  target\n", ""

    chains = NatChains(
        forward=ChainSpec("ACCEPT", "filter", "FORWARD", 1, "FWKNOP_FORWARD", 1),
        dnat=ChainSpec("DNAT", "nat", "PREROUTING", 1, "FWKNOP_PREROUTING", 1),
        snat=ChainSpec("SNAT", "nat", "POSTROUTING", 1, "FWKNOP_POSTROUTING", 1),
        masquerade=ChainSpec("MASQUERADE", "nat", "POSTROUTING", 1, "FWKNOP_MASQUERADE", 1),
        snat_at_start=False,
    )
    rules = IptablesRules(IPT, INPUT)
    fw = Iptables(
        run,
        rules,
        nat=IptablesNat(run, chains, rules),
        rules6=IptablesRules("/usr/sbin/ip6tables", INPUT),
    )
    assert fw.listing() == (
        "Listing rules in fwknopd iptables chains...\n\n"
        "Chain FWKNOP_INPUT (1 references)\nnum  target\n\n"
        "Chain FWKNOP_FORWARD (1 references)\nnum  target\n\n"
        "Chain FWKNOP_PREROUTING (1 references)\nnum  target\n\n"
        "Chain FWKNOP_POSTROUTING (1 references)\nnum  target\n\n"
        "# FWKNOP_MASQUERADE: iptables: No chain/target/match by that name.\n\n"
        "Listing rules in fwknopd iptables IPv6 chains...\n\n"
        "Chain FWKNOP_INPUT (1 references)\nnum  target"
    )
    assert calls[0] == [IPT, "-w", "-t", "filter", "-L", "FWKNOP_INPUT", "--line-numbers", "-n"]
    assert calls[2][:4] == [IPT, "-w", "-t", "nat"] and calls[-1][0].endswith("ip6tables")
