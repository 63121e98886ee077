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
    parse_knock_limit,
    parse_port_offset,
    parse_seconds,
    parse_usernames,
)

from fwknop_core import KnockKey, parse_shared_sequence
from tests.helpers.legacy import (
    CLIENT_IP,
    case,
    encrypted,
    observations,
    os_fingerprint,
    pcap_knocks,
    shared,
)

NET = (ipaddress.ip_network("198.18.5.0/24"),)
SRC = ipaddress.ip_address(CLIENT_IP)
CUSTOM_LINE = os_fingerprint()["client_syn"]["fwknop_1x_with_custom_line"]["line"]


def _ports(text: str) -> frozenset[tuple[str, int]]:
    out = set()
    for item in text.split(","):
        proto, _, port = item.strip().lower().partition("/")
        out.add((proto, int(port or 0)))
    return frozenset(out)


def rule_from_1x(access_conf: str, name: str = "stanza1") -> Rule:
    """A 1.x stanza (``KEY: value;`` lines) as a rule: the test's stand-in for the reader."""
    kv: dict[str, str] = {}
    for line in access_conf.splitlines():
        if not line.strip():
            continue
        key, _, value = line.rstrip(";").partition(":")
        kv[key.strip()] = value.strip()
    common: dict[str, Any] = {"name": name, "source": NET}
    if "KNOCK_INTERVAL" in kv:
        common["knock_interval"] = parse_seconds("KNOCK_INTERVAL", kv["KNOCK_INTERVAL"])
    if "KNOCK_LIMIT" in kv:
        common["knock_limit"] = parse_knock_limit(kv["KNOCK_LIMIT"])
    if "FW_ACCESS_TIMEOUT" in kv:
        common["fw_access_timeout"] = int(kv["FW_ACCESS_TIMEOUT"])
    common["require_os"] = OsRequirement.parse(kv.get("REQUIRE_OS"), kv.get("REQUIRE_OS_REGEX"))
    if "SHARED_SEQUENCE" in kv:
        return SharedRule(
            steps=parse_shared_sequence(kv["SHARED_SEQUENCE"]),
            open_ports=_ports(kv["OPEN_PORTS"]),
            min_time_diff=parse_seconds("MIN", kv["MIN_TIME_DIFF"])
            if "MIN_TIME_DIFF" in kv
            else None,
            max_time_diff=parse_seconds("MAX", kv["MAX_TIME_DIFF"])
            if "MAX_TIME_DIFF" in kv
            else None,
            **common,
        )
    return EncryptedRule(
        key=KnockKey.from_passphrase(kv["KEY"]),
        open_ports=_ports(kv["OPEN_PORTS"]),
        offset=parse_port_offset(kv.get("PORT_OFFSET", "61000")),
        require_usernames=parse_usernames(kv["REQUIRE_USERNAME"])
        if "REQUIRE_USERNAME" in kv
        else None,
        require_source_address="REQUIRE_SOURCE_ADDRESS" in kv,
        **common,
    )


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
    rule = rule_from_1x(obs["access_conf"].split("\n", 1)[1].replace("ENCRYPT_SEQUENCE;\n", ""))
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
