"""The sequence collector: the recorded 1.x sequences and 1.9.12 server runs, and our decisions."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.knock import (
    Collector,
    Decision,
    EncryptedRule,
    Grant,
    Knock,
    OsDatabase,
    OsRequirement,
    Refusal,
    RefuseReason,
    Rule,
    SharedRule,
    capture_filter,
    parse_knock,
    parse_knock_limit,
    parse_port_offset,
    parse_seconds,
    parse_usernames,
)
from fwknop_server.knock.wire import ICMP, TCP, UDP

from fwknop_core import KnockKey, KnockRequest, build_knock_sequence, parse_shared_sequence
from tests.helpers.legacy import (
    CLIENT_IP,
    case,
    encrypted,
    observations,
    os_fingerprint,
    pcap_knocks,
    rule_from_1x,
    shared,
)

NET = (ipaddress.ip_network("198.18.5.0/24"),)
SRC = ipaddress.ip_address(CLIENT_IP)
CUSTOM_LINE = os_fingerprint()["client_syn"]["fwknop_1x_with_custom_line"]["line"]


def feed_all(collector: Collector, knocks: Iterable[Knock]) -> list[Decision]:
    """Every knock, then expiry long after the last (what a daemon's timer would do)."""
    out: list[Decision] = []
    last = 0.0
    for knock in knocks:
        out += collector.feed(knock)
        last = knock.time
    return out + collector.expire(last + 1e6)


def shifted(
    knocks: Sequence[Knock], start: float, picks: Sequence[int] | None = None, *, run: int = 0
) -> list[Knock]:
    """The knocks (or some) moved to begin at ``start``, keeping their spacing.

    ``run`` > 0 gives TCP knocks other source ports, as the client's next run
    would (identical SYNs are retransmissions, which the collector drops).
    """
    chosen = [knocks[i] for i in picks] if picks is not None else list(knocks)
    base = chosen[0].time
    return [
        dataclasses.replace(k, time=start + k.time - base, sport=(k.sport + run) % 65536 or 1)
        for k in chosen
    ]


def knocks_of(case_id: str) -> list[Knock]:
    return pcap_knocks(case(case_id)["pcap"])


# -- every recorded sequence through the collector ------------------------------------------


ENC = encrypted()


@pytest.mark.parametrize("c", ENC, ids=[c["id"] for c in ENC])
def test_recorded_encrypted_pcap_is_granted_what_the_vectors_expect(c: dict[str, Any]) -> None:
    """README: a stanza with OPEN_PORTS tcp/22 grants the union with the decoded proto/port."""
    want = c["expected"]
    rule = EncryptedRule(
        name="s1", source=NET, key=KnockKey.from_passphrase(c["key"]),
        open_ports=frozenset({("tcp", 22)}), permit_client_ports=True, offset=c["port_offset"],
        allow_ip=(ipaddress.ip_network("10.0.0.0/8"),),
    )  # fmt: skip
    (grant,) = feed_all(Collector([rule]), knocks_of(c["id"]))
    assert isinstance(grant, Grant), grant
    allow = CLIENT_IP if want["allow_ip"] == "0.0.0.0" else want["allow_ip"]
    assert str(grant.allow_ip) == allow
    assert grant.ports == {("tcp", 22), (want["proto"], want["port"])}
    assert grant.username == want["username_full"].encode()
    assert grant.request == f"{want['proto']}/{want['port']}"
    assert grant.refused_request is None
    assert grant.source == SRC
    assert grant.replay_digest


def test_retransmitted_syn_is_collapsed_so_the_drop_policy_capture_decodes() -> None:
    c = case("enc-drop-policy")
    rule = rule_from_1x(f"KEY: {c['key']};\nOPEN_PORTS: tcp/22;\n")
    collector = Collector([rule])
    (grant,) = feed_all(collector, knocks_of("enc-drop-policy"))
    assert isinstance(grant, Grant)
    assert collector.stats["duplicates"] == 1


@pytest.mark.parametrize("c", shared(), ids=[c["id"] for c in shared()])
def test_recorded_shared_pcap_matches_its_sequence(c: dict[str, Any]) -> None:
    steps = c["rc_line"].split(": ", 1)[1]
    rule = rule_from_1x(f"SHARED_SEQUENCE: {steps};\nOPEN_PORTS: tcp/22;\n")
    (grant,) = feed_all(Collector([rule]), knocks_of(c["id"]))
    assert isinstance(grant, Grant)
    assert (grant.kind, grant.allow_ip, grant.ports) == ("shared", SRC, {("tcp", 22)})


def test_shared_sequence_fails_with_the_other_cases_knocks() -> None:
    rule = rule_from_1x("SHARED_SEQUENCE: tcp/5501, tcp/5502, tcp/5504;\nOPEN_PORTS: tcp/22;\n")
    assert feed_all(Collector([rule]), knocks_of("shared-mixed")) == []
    wrong_order = shifted(knocks_of("shared-tcp3"), 0, [0, 2, 1])
    assert feed_all(Collector([rule]), wrong_order) == []


# -- the 28 runs of the real fwknopd 1.9.12 ----------------------------------------------------

# how each run was fed (vectors/legacy/tools/run_server*.py): (delay, case, knock indices)
FEEDS: dict[str, list[tuple[float, str, list[int] | None]]] = {
    "enc-basic": [(0, "enc-basic-root", None)],
    "enc-source-ip": [(0, "enc-source-ip", None)],
    "enc-source-ip-require-source": [(0, "enc-source-ip", None)],
    "enc-udp53-longkey": [(0, "enc-key24-udp53", None)],
    "enc-wrong-key": [(0, "enc-key10-tcp22", None)],
    "enc-48-ports-require-username": [(0, "enc-user-13chars", None)],
    "enc-48-ports-truncated-username-match": [(0, "enc-user-13chars", None)],
    "enc-require-username-ok": [(0, "enc-user-alice", None)],
    "enc-offset40000": [(0, "enc-user-bob-offset40000", None)],
    "enc-offset-mismatch": [(0, "enc-user-bob-offset40000", None)],
    "enc-rotate-proto": [(0, "enc-rotate-proto", None)],
    "enc-require-os-regex-parse-bug": [(0, "enc-basic-root", None)],
    "enc-require-os-exact-custom-sig": [(0, "enc-basic-root", None)],
    "enc-require-os-stock-pfos": [(0, "enc-basic-root", None)],
    "shared-tcp3": [(0, "shared-tcp3", None)],
    "shared-mixed-icmp": [(0, "shared-mixed", None)],
    "shared-require-os-ignored": [(0, "shared-tcp3", None)],
    "shared-min-time-diff-fast": [(0, "shared-tcp3", None)],
    "shared-min-time-diff-slow": [
        (0, "shared-tcp3", [0]), (2.5, "shared-tcp3", [1]), (2.5, "shared-tcp3", [2])
    ],
    "shared-max-time-diff-exceeded": [(0, "shared-tcp3", [0]), (4, "shared-tcp3", [1, 2])],
    "shared-knock-limit-0": [(0, "shared-tcp3", None), (2, "shared-tcp3", None)],
    "shared-wrong-knock-resets": [(0, "shared-tcp3", [0, 2]), (2, "shared-tcp3", [0, 1, 2])],
    "enc-replay-same-sequence": [(0, "enc-basic-root", None), (2, "enc-basic-root", None)],
    "enc-48-then-second-sequence-lost": [
        (0, "enc-user-13chars", None), (5, "enc-user-13chars", None)
    ],
    "enc-no-fw-access-timeout-means-permanent": [(0, "enc-basic-root", None)],
    "enc-allow-ip-not-source": [(0, "enc-allow-other-ip-port65535", None)],
    "enc-icmp-request": [(0, "enc-icmp", None)],
    "enc-quirk-udp53-tcp22": [(0, "enc-multi-access-quirk", None)],
}  # fmt: skip

G = "grant"
# what our collector decides, run by run: ("grant", ports, allow IP[, username]) or a refusal
# reason; SAME marks the runs where that is also what 1.9.12 did
OURS: dict[str, list[tuple[Any, ...]]] = {
    # OPEN_PORTS tcp/80, the client asked tcp/22: never more than the stanza (1.x: both)
    "enc-basic": [(G, {("tcp", 80)}, CLIENT_IP)],
    "enc-source-ip": [(G, {("tcp", 22)}, CLIENT_IP)],
    "enc-source-ip-require-source": [(RefuseReason.ALLOW_IP_ZERO,)],
    "enc-udp53-longkey": [(G, {("tcp", 22)}, CLIENT_IP)],  # udp/53 not in OPEN_PORTS
    "enc-wrong-key": [(RefuseReason.DECRYPT_FAILED,)],
    # 48 knocks decoded whole: the full name (1.x saw "longuser" and refused)
    "enc-48-ports-require-username": [(G, {("tcp", 22)}, CLIENT_IP, b"longusername1")],
    # ... and so the truncated name no longer matches (1.x granted)
    "enc-48-ports-truncated-username-match": [(RefuseReason.USERNAME,)],
    "enc-require-username-ok": [(G, {("tcp", 22)}, CLIENT_IP, b"alice")],
    "enc-offset40000": [(G, {("tcp", 22)}, CLIENT_IP, b"bob")],  # tcp/443 not in OPEN_PORTS
    "enc-offset-mismatch": [],
    "enc-rotate-proto": [(G, {("tcp", 22)}, CLIENT_IP)],
    # REQUIRE_OS_REGEX works (1.x stored it as REQUIRE_OS "_REGEX: linux")
    "enc-require-os-regex-parse-bug": [(G, {("tcp", 22)}, CLIENT_IP)],
    "enc-require-os-exact-custom-sig": [(G, {("tcp", 22)}, CLIENT_IP)],
    "enc-require-os-stock-pfos": [(RefuseReason.OS_MISMATCH,)],
    "shared-tcp3": [(G, {("tcp", 22)}, CLIENT_IP)],
    "shared-mixed-icmp": [(G, {("tcp", 22), ("udp", 53)}, CLIENT_IP)],
    # REQUIRE_OS applies to shared sequences (1.x ignored it)
    "shared-require-os-ignored": [(RefuseReason.OS_MISMATCH,)],
    "shared-min-time-diff-fast": [(RefuseReason.TIMING,)],
    "shared-min-time-diff-slow": [(G, {("tcp", 22)}, CLIENT_IP)],
    "shared-max-time-diff-exceeded": [(RefuseReason.TIMING,)],
    # KNOCK_LIMIT 0 honours no sequence (1.x: one sequence, counting two rules)
    "shared-knock-limit-0": [(RefuseReason.KNOCK_LIMIT,), (RefuseReason.KNOCK_LIMIT,)],
    "shared-wrong-knock-resets": [(G, {("tcp", 22)}, CLIENT_IP)],
    # the replay is refused (1.x granted it again)
    "enc-replay-same-sequence": [(G, {("tcp", 22)}, CLIENT_IP), (RefuseReason.REPLAY,)],
    "enc-48-then-second-sequence-lost": [
        (G, {("tcp", 22)}, CLIENT_IP, b"longusername1"), (RefuseReason.REPLAY,)
    ],
    "enc-no-fw-access-timeout-means-permanent": [(G, {("tcp", 22)}, CLIENT_IP)],
    # the allow IP must be the knock source (1.x opened 10.1.2.3)
    "enc-allow-ip-not-source": [(RefuseReason.ALLOW_IP_NOT_SOURCE,)],
    "enc-icmp-request": [(G, {("tcp", 22)}, CLIENT_IP)],  # icmp not in OPEN_PORTS
    "enc-quirk-udp53-tcp22": [(G, {("tcp", 22)}, CLIENT_IP)],
}  # fmt: skip
SAME = {
    "enc-source-ip", "enc-source-ip-require-source", "enc-wrong-key", "enc-require-username-ok",
    "enc-offset-mismatch", "enc-rotate-proto", "enc-require-os-exact-custom-sig",
    "enc-require-os-stock-pfos", "shared-tcp3", "shared-mixed-icmp", "shared-min-time-diff-fast",
    "shared-min-time-diff-slow", "shared-max-time-diff-exceeded", "shared-wrong-knock-resets",
    "enc-no-fw-access-timeout-means-permanent",
}  # fmt: skip
OBS = observations()


def _os_db(obs: dict[str, Any]) -> OsDatabase:
    pf_os = (Path(__file__).parents[1] / "data" / "legacy" / "pf.os").read_text()
    if obs["custom_pf_os_line"]:
        pf_os += obs["custom_pf_os_line"] + "\n"
    return OsDatabase.from_texts(pf_os=[("pf.os", pf_os)])


def _1x_rules(obs: dict[str, Any]) -> set[tuple[str, str, int]]:
    out = set()
    for line in obs["fw_rules_after"]:
        words = line.split()
        if words[:2] == ["-A", "FWKNOP_INPUT"]:
            out.add(
                (words[3].removesuffix("/32"), words[5], int(words[words.index("--dport") + 1]))
            )
    return out


def test_every_1x_run_has_a_feed_and_an_outcome() -> None:
    assert len(OBS) == 28
    assert {o["id"] for o in OBS} == set(FEEDS) == set(OURS)


@pytest.mark.parametrize("obs", OBS, ids=[o["id"] for o in OBS])
def test_1x_run_through_our_collector(obs: dict[str, Any]) -> None:
    rule = rule_from_1x(obs["access_conf"])  # the file 1.9.12 read, unchanged
    knocks: list[Knock] = []
    start = 0.0
    for run, (delay, case_id, picks) in enumerate(FEEDS[obs["id"]]):
        start = (knocks[-1].time if knocks else 0.0) + delay
        knocks += shifted(knocks_of(case_id), start, picks, run=run)
    assert len(knocks) == obs["log_lines_fed"]
    decisions = feed_all(Collector([rule], os_db=_os_db(obs)), knocks)
    got: list[tuple[Any, ...]] = []
    for d in decisions:
        if isinstance(d, Refusal):
            got.append((d.reason,))
        elif d.username in (None, b"root"):
            got.append((G, set(d.ports), str(d.allow_ip)))
        else:
            got.append((G, set(d.ports), str(d.allow_ip), d.username))
    assert got == OURS[obs["id"]]
    if obs["id"] in SAME:  # and 1.x's firewall ended up with the same rules
        ours = {(str(d.allow_ip), p, n) for d in decisions if isinstance(d, Grant)
                for p, n in d.ports}  # fmt: skip
        assert ours == _1x_rules(obs)


def test_requested_icmp_opens_icmp_when_the_stanza_allows_it() -> None:
    rule = rule_from_1x("KEY: icmpkey-123;\nOPEN_PORTS: tcp/22, icmp;\n")
    (grant,) = feed_all(Collector([rule]), knocks_of("enc-icmp"))
    assert isinstance(grant, Grant)
    assert grant.ports == {("tcp", 22), ("icmp", 0)}  # 1.x logged it and created nothing


def test_requested_port_outside_open_ports_is_named_in_the_grant() -> None:
    rule = rule_from_1x("KEY: testkey1;\nOPEN_PORTS: tcp/80;\n")
    (grant,) = feed_all(Collector([rule]), knocks_of("enc-basic-root"))
    assert isinstance(grant, Grant)
    assert (grant.ports, grant.request, grant.refused_request) == (
        {("tcp", 80)}, "tcp/22", "tcp/22"
    )  # fmt: skip


def test_allow_ip_elsewhere_needs_knock_allow_ip() -> None:
    rule = rule_from_1x("KEY: otherip-key;\nOPEN_PORTS: tcp/22;\n")
    assert isinstance(rule, EncryptedRule)
    wider = dataclasses.replace(rule, allow_ip=(ipaddress.ip_network("10.1.2.0/24"),))
    (grant,) = feed_all(Collector([wider]), knocks_of("enc-allow-other-ip-port65535"))
    assert isinstance(grant, Grant)
    assert str(grant.allow_ip) == "10.1.2.3"
    blacklisted = Collector([wider], blacklist=[ipaddress.ip_network("10.0.0.0/8")])
    (refusal,) = feed_all(blacklisted, knocks_of("enc-allow-other-ip-port65535"))
    assert isinstance(refusal, Refusal)
    assert refusal.reason is RefuseReason.BLACKLISTED


def test_blacklisted_source_is_not_even_collected() -> None:
    rule = rule_from_1x("KEY: testkey1;\nOPEN_PORTS: tcp/22;\n")
    collector = Collector([rule], blacklist=[ipaddress.ip_network("198.18.5.1/32")])
    assert feed_all(collector, knocks_of("enc-basic-root")) == []
    assert collector.stats["blacklisted"] == 1
    assert collector.sources == 0


def test_source_outside_the_stanza_is_ignored() -> None:
    rule = dataclasses.replace(
        rule_from_1x("KEY: testkey1;\nOPEN_PORTS: tcp/22;\n"),
        source=(ipaddress.ip_network("203.0.113.0/24"),),
    )
    assert feed_all(Collector([rule]), knocks_of("enc-basic-root")) == []


# -- behaviour, case by case ----------------------------------------------------------------

KEY = KnockKey.from_passphrase("testkey1")
A = ipaddress.ip_address("198.18.5.1")
B = ipaddress.ip_address("198.18.5.7")


def enc_rule(**changes: Any) -> EncryptedRule:
    base = EncryptedRule(name="enc", source=NET, key=KEY, open_ports=frozenset({("tcp", 22)}))
    return dataclasses.replace(base, **changes)


def syns(
    source: ipaddress.IPv4Address | ipaddress.IPv6Address, ports: Iterable[int], start: float,
    step: float = 1.0, sport: int = 40000,
) -> list[Knock]:  # fmt: skip
    return [
        Knock(source, start + i * step, TCP, port, sport + i, 1000 + i)
        for i, port in enumerate(ports)
    ]


def sequence(user: bytes = b"root", allow: str = "198.18.5.1", port: int = 22) -> tuple[int, ...]:
    return build_knock_sequence(KnockRequest(allow, 6, port, user), KEY)


def test_two_sources_interleaving_each_get_their_grant() -> None:
    collector = Collector([enc_rule()])
    a = syns(A, sequence(), 0.0)
    b = syns(B, sequence(allow="198.18.5.7"), 0.5, sport=50000)
    merged = sorted(a + b, key=lambda k: k.time)
    grants = [d for d in feed_all(collector, merged) if isinstance(d, Grant)]
    assert sorted(str(g.allow_ip) for g in grants) == ["198.18.5.1", "198.18.5.7"]


def test_48_knocks_decode_whole_and_the_head_alone_is_decided_at_the_deadline() -> None:
    ports = sequence(user=b"longusername1")
    assert len(ports) == 48
    whole = Collector([enc_rule()])
    (grant,) = [d for k in syns(A, ports, 0.0) for d in whole.feed(k)]
    assert isinstance(grant, Grant)
    assert grant.username == b"longusername1"
    head = Collector([enc_rule(knock_interval=60)])
    assert [d for k in syns(A, ports[:32], 0.0) for d in head.feed(k)] == []
    assert head.next_deadline() == 60.0
    assert head.expire(59.0) == []
    (late,) = head.expire(60.5)
    assert isinstance(late, Grant)
    assert late.username == b"longuser"  # what 1.x saw
    assert late.replay_digest == grant.replay_digest


def test_a_stray_knock_in_the_header_is_ignored_but_after_it_breaks_the_sequence() -> None:
    ports = list(sequence())
    knocks = syns(A, [*ports[:3], 61200, *ports[3:]], 0.0)
    (grant,) = feed_all(Collector([enc_rule()]), knocks)
    assert isinstance(grant, Grant)
    knocks = syns(A, [*ports[:10], 61200, *ports[10:]], 0.0)
    (refusal, *_rest) = feed_all(Collector([enc_rule()]), knocks)
    assert isinstance(refusal, Refusal)
    assert refusal.reason is RefuseReason.DECRYPT_FAILED


def test_knocks_outside_the_range_neither_count_nor_reset() -> None:
    ports = list(sequence())
    knocks = syns(A, [*ports[:12], 22, 80, *ports[12:]], 0.0)
    (grant,) = feed_all(Collector([enc_rule()]), knocks)
    assert isinstance(grant, Grant)


def test_an_unfinished_encrypted_sequence_times_out_with_a_refusal() -> None:
    collector = Collector([enc_rule(knock_interval=10)])
    for knock in syns(A, sequence()[:20], 0.0, step=0.1):
        collector.feed(knock)
    (refusal,) = collector.expire(11.0)
    assert isinstance(refusal, Refusal)
    assert (refusal.reason, refusal.detail) == (RefuseReason.TIMEOUT, "20 knocks")
    assert collector.sources == 0
    # a later knock of the old sequence starts nothing
    assert collector.feed(syns(A, [sequence()[25]], 12.0)[0]) == []


def test_a_sequence_slower_than_knock_interval_is_refused() -> None:
    collector = Collector([enc_rule(knock_interval=20)])
    decisions = [d for k in syns(A, sequence(), 0.0, step=1.0) for d in collector.feed(k)]
    assert [d.reason for d in decisions if isinstance(d, Refusal)] == [RefuseReason.TIMEOUT]
    assert not any(isinstance(d, Grant) for d in decisions)


def test_knock_limit_counts_encrypted_sequences_per_source() -> None:
    collector = Collector([enc_rule(knock_limit=1)])
    first = feed_all(collector, syns(A, sequence(), 0.0, step=0.01))
    second = feed_all(collector, syns(A, sequence(), 100.0, step=0.01, sport=41000))
    assert isinstance(first[0], Grant)
    assert isinstance(second[0], Refusal)
    assert second[0].reason is RefuseReason.KNOCK_LIMIT
    assert collector.limit_counts() == {("enc", "198.18.5.1"): 1}
    # another source has its own count; a restored count carries on
    other = feed_all(collector, syns(B, sequence(allow="198.18.5.7"), 200.0, step=0.01))
    assert isinstance(other[0], Grant)
    again = Collector([enc_rule(knock_limit=1)], counts=collector.limit_counts())
    assert isinstance(feed_all(again, syns(A, sequence(), 0.0, step=0.01))[0], Refusal)


def test_the_replay_guard_is_asked_before_any_policy() -> None:
    class Store:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def remember(self, digest: str, now: float) -> bool:
            fresh = digest not in self.seen
            self.seen.append(digest)
            return fresh

    store = Store()
    ports = sequence(allow="10.9.9.9")
    collector = Collector([enc_rule()], replay=store)
    (refusal,) = feed_all(collector, syns(A, ports, 0.0, step=0.01))
    assert isinstance(refusal, Refusal)
    assert refusal.reason is RefuseReason.ALLOW_IP_NOT_SOURCE
    assert store.seen == [refusal.replay_digest]
    (again,) = feed_all(collector, syns(A, ports, 10.0, step=0.01, sport=45000))
    assert isinstance(again, Refusal)
    assert again.reason is RefuseReason.REPLAY


def test_junk_in_the_knock_range_keeps_no_state() -> None:
    collector = Collector([enc_rule()])
    knocks = [
        Knock(ipaddress.IPv4Address(0x0A000000 + i), i * 0.001, TCP, 61000 + i % 256, 1, i)
        for i in range(20000)
        if i % 256 != 83
    ]
    for knock in knocks:
        assert collector.feed(knock) == []
    assert collector.sources == 0


def test_sources_are_capped_and_the_least_recent_goes_first() -> None:
    collector = Collector([enc_rule()], max_sources=2)
    c = ipaddress.ip_address("198.18.5.9")
    collector.feed(syns(A, [61083], 0.0)[0])
    collector.feed(syns(B, [61083], 1.0)[0])
    collector.feed(syns(A, [61097], 2.0, sport=40001)[0])  # A knocks again: B is older now
    collector.feed(syns(c, [61083], 3.0)[0])
    assert collector.sources == 2
    assert collector.stats["evicted"] == 1
    rest = syns(A, sequence()[2:], 4.0, step=0.01, sport=40002)
    # A's sequence was not the one evicted: it still has its first two knocks, then these
    collector2 = Collector([enc_rule()], max_sources=2)
    ports = sequence()
    collector2.feed(syns(A, ports[:1], 0.0)[0])
    collector2.feed(syns(B, [61083], 1.0)[0])
    collector2.feed(syns(A, ports[1:2], 2.0, sport=40001)[0])
    collector2.feed(syns(c, [61083], 3.0)[0])
    assert any(isinstance(d, Grant) for k in rest for d in collector2.feed(k))


def test_reconfigure_keeps_progress_of_unchanged_stanzas_only() -> None:
    ports = sequence()
    collector = Collector([enc_rule()])
    for knock in syns(A, ports[:16], 0.0, step=0.01):
        collector.feed(knock)
    collector.reconfigure([enc_rule()])
    rest = syns(A, ports[16:], 1.0, step=0.01, sport=41000)
    assert any(isinstance(d, Grant) for k in rest for d in collector.feed(k))
    for knock in syns(A, ports[:16], 10.0, step=0.01, sport=42000):
        collector.feed(knock)
    collector.reconfigure([enc_rule(open_ports=frozenset({("tcp", 2222)}))])
    rest = syns(A, ports[16:], 11.0, step=0.01, sport=43000)
    assert not any(isinstance(d, Grant) for k in rest for d in collector.feed(k))


def shared_rule(steps: str = "tcp/5501, udp/5502, tcp/5504", **changes: Any) -> SharedRule:
    base = SharedRule(
        name="sh", source=NET, steps=parse_shared_sequence(steps),
        open_ports=frozenset({("tcp", 22)}),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def knock(source: Any, when: float, proto: int, port: int | None, sport: int = 1) -> Knock:
    return Knock(source, when, proto, port, sport, None if proto != TCP else sport)


def test_shared_sources_interleave_and_two_stanzas_track_one_source_apart() -> None:
    one = shared_rule()
    two = shared_rule("udp/7000, udp/7001", name="sh2", open_ports=frozenset({("tcp", 80)}))
    collector = Collector([one, two])
    stream = [
        knock(A, 0.0, TCP, 5501), knock(B, 0.1, TCP, 5501), knock(A, 0.2, UDP, 5502),
        knock(B, 0.3, UDP, 5502), knock(B, 0.4, TCP, 5504), knock(A, 0.5, TCP, 5504, sport=2),
    ]  # fmt: skip
    got = [d for k in stream for d in collector.feed(k)]
    assert [(str(d.allow_ip), d.rule) for d in got] == [("198.18.5.7", "sh"), ("198.18.5.1", "sh")]
    got = [d for k in (knock(A, 1, UDP, 7000), knock(A, 2, UDP, 7001)) for d in collector.feed(k)]
    assert [(d.rule, set(d.ports)) for d in got if isinstance(d, Grant)] == [("sh2", {("tcp", 80)})]


def test_shared_wrong_knock_resets_and_a_wrong_knock_equal_to_step_0_restarts() -> None:
    collector = Collector([shared_rule()])
    stream = [knock(A, 0, TCP, 5501), knock(A, 1, UDP, 9999), knock(A, 2, UDP, 5502)]
    assert [d for k in stream for d in collector.feed(k)] == []
    stream = [
        knock(A, 10, TCP, 5501), knock(A, 11, TCP, 5501, sport=2), knock(A, 12, UDP, 5502),
        knock(A, 13, TCP, 5504, sport=3),
    ]  # fmt: skip
    (grant,) = [d for k in stream for d in collector.feed(k)]
    assert isinstance(grant, Grant)


def test_shared_knock_interval_applies_from_the_first_knock() -> None:
    collector = Collector([shared_rule(knock_interval=5)])
    stream = [knock(A, 0, TCP, 5501), knock(A, 3, UDP, 5502), knock(A, 6, TCP, 5504, sport=2)]
    decisions = [d for k in stream for d in collector.feed(k)]
    assert [d.reason for d in decisions if isinstance(d, Refusal)] == [RefuseReason.TIMEOUT]
    assert collector.feed(knock(A, 7, UDP, 5502)) == []


@pytest.mark.parametrize(
    ("gaps", "lo", "hi", "ok"),
    [
        ((1.5, 1.5), 1.0, None, True),
        ((1.0, 1.5), 1.0, None, False),  # strict: exactly MIN fails, as in 1.x
        ((0.5, 1.9), None, 2.0, True),
        ((0.5, 2.0), None, 2.0, False),
        ((0.25, 0.4), 0.2, 0.5, True),  # fractions of a second work
    ],
)
def test_shared_min_and_max_time_diff(
    gaps: tuple[float, float], lo: float | None, hi: float | None, ok: bool
) -> None:
    collector = Collector([shared_rule(min_time_diff=lo, max_time_diff=hi)])
    t1, t2 = gaps[0], gaps[0] + gaps[1]
    stream = [knock(A, 0, TCP, 5501), knock(A, t1, UDP, 5502), knock(A, t2, TCP, 5504, sport=2)]
    decisions = [d for k in stream for d in collector.feed(k)]
    assert isinstance(decisions[-1], Grant if ok else Refusal)


def test_require_os_on_shared_sequences_uses_the_sequences_syns() -> None:
    p0f = Path("/etc/p0f/p0f.fp").read_text()
    db = OsDatabase.from_texts(p0f=[("p0f.fp", p0f)])
    linux = shared_rule(
        "tcp/5501, tcp/5502, tcp/5504", require_os=OsRequirement.parse(None, "linux")
    )
    (grant,) = feed_all(Collector([linux], os_db=db), knocks_of("shared-tcp3"))
    assert isinstance(grant, Grant)
    udp_only = shared_rule("udp/7000, udp/7001", require_os=OsRequirement.parse(None, "linux"))
    stream = [knock(A, 0, UDP, 7000), knock(A, 1, UDP, 7001)]
    collector = Collector([udp_only], os_db=db)
    (refusal,) = [d for k in stream for d in collector.feed(k)]
    assert isinstance(refusal, Refusal)
    assert refusal.reason is RefuseReason.NO_FINGERPRINT


def test_one_step_sequence_and_icmp_steps() -> None:
    collector = Collector([shared_rule("icmp")])
    (grant,) = collector.feed(knock(A, 0, ICMP, None))
    assert isinstance(grant, Grant)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"open_ports": frozenset()}, "OPEN_PORTS is required"),
        ({"fw_access_timeout": 0}, "FW_ACCESS_TIMEOUT"),
        ({"offset": 65281}, "PORT_OFFSET"),
        ({"knock_interval": 0.0}, "KNOCK_INTERVAL"),
        ({"source": ()}, "SOURCE"),
        ({"open_ports": frozenset({("sctp", 1)})}, "OPEN_PORTS entry"),
    ],
)
def test_encrypted_rules_refuse_what_they_cannot_run(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        enc_rule(**changes)


def test_shared_rules_and_keyword_parsers_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="MAX_TIME_DIFF 1 is below MIN_TIME_DIFF 2"):
        shared_rule(min_time_diff=2.0, max_time_diff=1.0)
    with pytest.raises(ValueError, match="OPEN_PORTS is required"):
        shared_rule(open_ports=frozenset())
    with pytest.raises(ValueError, match="PORT_OFFSET"):
        parse_port_offset("0")
    assert parse_port_offset("65280") == 65280
    with pytest.raises(ValueError, match="KNOCK_INTERVAL"):
        parse_seconds("KNOCK_INTERVAL", "soon")
    assert parse_seconds("MIN_TIME_DIFF", "0.25") == 0.25
    with pytest.raises(ValueError, match="KNOCK_LIMIT"):
        parse_knock_limit("-1")
    assert parse_usernames("alice, bob") == {b"alice", b"bob"}
    with pytest.raises(ValueError, match="two sequence stanzas"):
        Collector([enc_rule(), enc_rule()])


def test_capture_filter_compiles_and_passes_every_recorded_knock() -> None:
    from fwknop_server.capture.libpcap import compile_filter

    rules: list[Rule] = [
        enc_rule(),
        enc_rule(name="bob", offset=40000),
        shared_rule("tcp/5501, tcp/5502, tcp/5504", name="s3"),
        shared_rule("tcp/65531, udp/65533, icmp, tcp/65532, udp/65530", name="s5"),
    ]
    expression = capture_filter(rules)
    assert expression is not None
    assert "dst portrange 61000-61255" in expression
    assert "dst portrange 65531-65532" in expression
    assert compile_filter(expression)
    for c in [*encrypted(), *shared()]:
        if c["port_offset" if "port_offset" in c else "id"] in (1, 65279):
            continue  # offsets no rule above uses
        assert len(pcap_knocks(c["pcap"], expression)) == len(c["knocks"]), c["id"]
    assert capture_filter([]) is None
    assert "icmp" not in (capture_filter(rules[:3]) or "")


def test_capture_filter_takes_ipv4_and_ipv6_knocks_and_nothing_else(tmp_path: Path) -> None:
    from fwknop_server.capture.libpcap import read_file

    from tests.helpers import packets as pk

    rules: list[Rule] = [enc_rule(), shared_rule("tcp/5501, udp/5502, icmp", name="s")]
    expression = capture_filter(rules)
    assert expression is not None
    a4, b4, a6, b6 = "198.18.0.2", "198.18.0.1", "2001:db8::2", "2001:db8::1"
    wanted = [
        pk.tcp_syn(a4, b4, 61083), pk.tcp_syn(a6, b6, 61255), pk.tcp_syn(a6, b6, 5501),
        pk.udp(a4, b4, 61000), pk.udp(a6, b6, 5502), pk.icmp_echo(a4, b4), pk.icmp_echo(a6, b6),
    ]  # fmt: skip
    unwanted = [
        pk.tcp_syn(a4, b4, 60999), pk.tcp_syn(a6, b6, 61256), pk.udp(a6, b6, 5503),
        pk.tcp_syn(a4, b4, 22),
    ]  # fmt: skip
    ack = bytearray(pk.tcp_syn(a6, b6, 5501))
    ack[53] = 0x12  # SYN+ACK: not a knock
    unwanted.append(bytes(ack))
    path = pk.write_pcap(tmp_path / "k.pcap", enumerate([*wanted, *unwanted]))
    passed = [frame for _lt, _t, frame in read_file(path, expression)]
    assert passed == wanted
    knocks = [parse_knock(p, 0.0) for p in passed]
    assert [(k.proto, k.port) for k in knocks if k] == [
        (TCP, 61083), (TCP, 61255), (TCP, 5501), (UDP, 61000), (UDP, 5502), (ICMP, None),
        (ICMP, None),
    ]  # fmt: skip


def test_feed_packet_screens_junk_without_parsing_and_grants_as_feed_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fwknop_server.capture.frames import network_layer
    from fwknop_server.capture.libpcap import read_file
    from fwknop_server.knock import collector as module

    from tests.helpers.legacy import LEGACY

    c = case("enc-rotate-proto")
    rule = rule_from_1x(f"KEY: {c['key']};\nOPEN_PORTS: tcp/22;\n")
    coll = Collector([rule])
    parsed: list[bytes] = []
    real = module.parse_knock

    def counting(ip: bytes, when: float) -> Knock | None:
        parsed.append(ip)
        return real(ip, when)

    monkeypatch.setattr(module, "parse_knock", counting)
    junk = bytes.fromhex("4500003c0001400040060000c6120563c61205020400ef4c")  # 61260, no state
    decisions = coll.feed_packet(junk + bytes(36), 0.0)
    assert decisions == [] and parsed == [] and coll.stats["screened"] == 1
    for linktype, stamp, frame in read_file(LEGACY / c["pcap"], None):
        ip = network_layer(linktype, frame)
        assert ip is not None
        decisions += coll.feed_packet(ip, stamp)
    (grant,) = decisions
    assert isinstance(grant, Grant)
    assert len(parsed) == 32
    assert coll.feed_packet(b"\x45", 0.0) == []
