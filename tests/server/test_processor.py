"""The packet pipeline decides exactly what the real fwknopd decided for the shared vectors.

Every valid vector is accepted with fwknopd's grant (source, ports, timeout
within the second or two between the client's timestamp and the server's
clock); every negative case is refused for fwknopd's reason. The NAT vectors
are refused as "not enabled" here, as fwknopd refuses NAT when forwarding is
off (these settings turn no NAT on); test_nat.py takes them with NAT on.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.access import AccessStanza, GpgPolicy, load_access
from fwknop_server.gpgpool import settle
from fwknop_server.processor import Processor, Settings
from fwknop_server.replay.sqlite import ReplayCache
from fwknop_server.screen import LONG_WAY
from fwknop_server.vocab import Accepted, Packet, Reason, Refused
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwknop_core import (
    MIN_GPG_PACKET,
    MIN_PACKET,
    EncryptionType,
    HmacKey,
    HmacType,
    MacMatch,
    RijndaelKey,
    SpaMessage,
    build_packet,
    encode_http_request,
    hmac_matches,
    replay_digest,
)
from tests.helpers.gpghome import GpgHomes, build_homes, stop_agents
from tests.helpers.vectors import negatives, vectors

SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
ACTION = re.compile(r"for (\S+) -> (\S+) ((?:\w+/\d+,?)+), expires at (\d+)")
NAT_IDS = {c["id"] for c in vectors() if c["id"].startswith("nat-")}


class MemoryReplay:
    def __init__(self) -> None:
        self.digests: dict[str, float] = {}

    def seen(self, digest: str) -> bool:
        return digest in self.digests

    def add(self, digest: str, packet: Packet, expires: float) -> bool:
        new = digest not in self.digests
        self.digests.setdefault(digest, expires)
        return new

    def prune(self, now: float) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.digests)

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgHomes]:
    made = build_homes(tmp_path_factory.mktemp("gnupg"))
    yield made
    stop_agents(made)


def _stanzas(text: str, tmp_path: Path, homes: GpgHomes | None = None) -> tuple[AccessStanza, ...]:
    if homes is not None:
        text = text.replace("GPG_SERVER_HOME", str(homes.server))
    path = tmp_path / "access.conf"
    path.write_text(text)
    return load_access([path])


def _settings_for(extra: str, **kwargs: Any) -> Settings:
    return Settings(
        http="ENABLE_SPA_OVER_HTTP" in extra,
        destination_rule="ENABLE_DESTINATION_RULE" in extra,
        **kwargs,
    )


VALID = [c for c in vectors() if c["id"] != "server-cmd"]


@pytest.mark.gpg
@pytest.mark.parametrize("case", VALID, ids=[c["id"] for c in VALID])
def test_every_vector_gets_fwknopds_decision(
    case: dict[str, Any], tmp_path: Path, homes: GpgHomes
) -> None:
    server = case["server"]
    extra = server["fwknopd_conf_extra"]
    stanzas = _stanzas(server["access_conf"], tmp_path, homes)
    processor = Processor(stanzas, _settings_for(extra), replay=MemoryReplay())
    payload = server["received_spa_data"].encode()
    if "ENABLE_SPA_OVER_HTTP" in extra:
        payload = encode_http_request(server["received_spa_data"], host="198.18.0.1")
    dst = None if "ENABLE_UDP_SERVER" in extra else DST
    # the server's clock: the packet's timestamp, less the offset the client was told to add
    timestamp = server["decoded_fields"]["timestamp"] - _client_offset(case["client_args"])
    decision = settle(processor.process(Packet(payload, SRC, dst, 17, 40000, 62201), now=timestamp))
    if case["id"] in NAT_IDS:
        assert isinstance(decision, Refused)
        assert decision.reason is Reason.NAT
        return
    assert isinstance(decision, Accepted), decision
    grant = decision.grant
    actions = [ACTION.search(a) for a in server["actions"]]
    assert all(actions)
    sources = {m.group(1) for m in actions if m}
    assert sources == {str(grant.source)}
    assert {m.group(2) for m in actions if m} == {str(grant.destination or "0.0.0.0/0")}
    ports = {p for m in actions if m for p in m.group(3).split(",")}
    assert ports == {f"{proto}/{port}" for proto, port in grant.ports}
    fwknopd_timeout = int(actions[0].group(4)) - timestamp  # type: ignore[union-attr]
    assert 0 <= fwknopd_timeout - grant.timeout <= 2  # the client-to-server delay
    assert grant.username == server["decoded_fields"]["username"]


def _client_offset(args: list[str]) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    for flag, sign in (("--time-offset-plus", 1), ("--time-offset-minus", -1)):
        if flag in args:
            text = args[args.index(flag) + 1]
            return sign * int(text.rstrip("smhd")) * units.get(text[-1], 1)
    return 0


def _negative(case_id: str) -> dict[str, Any]:
    return next(c for c in negatives() if c["id"] == case_id)


NEGATIVE_REASONS = {
    "hmac-tampered": Reason.HMAC_MISMATCH,
    "ciphertext-tampered": Reason.HMAC_MISMATCH,
    "wrong-hmac-key": Reason.HMAC_MISMATCH,
    "wrong-rijndael-key": Reason.DECRYPT_FAILED,
    "wrong-key-nohmac": Reason.DECRYPT_FAILED,
    "hmac-type-mismatch": Reason.HMAC_MISMATCH,
    "enc-mode-mismatch": Reason.DECRYPT_FAILED,
    "nohmac-to-hmac-stanza": Reason.HMAC_MISMATCH,
    "hmac-to-nohmac-stanza": Reason.MALFORMED,
    "truncated-10": Reason.HMAC_MISMATCH,
    "truncated-to-139": Reason.TOO_SHORT,
    "too-long-1501": Reason.TOO_LONG,
    "garbage-base64-200": Reason.HMAC_MISMATCH,
    "non-base64-chars": Reason.NOT_SPA,
    "salted-prefix-readded": Reason.PREFIX_STUFFING,
    "port-not-open": Reason.PORTS,
    "port-restricted": Reason.PORTS,
    "username-mismatch": Reason.USERNAME,
    "source-zero-required": Reason.SOURCE_REQUIRED,
    "source-not-matched": Reason.NO_STANZA,
    "cmd-not-enabled": Reason.COMMAND,
    "nat-not-enabled": Reason.NAT,
    "stanza-expired": Reason.EXPIRED_STANZA,
    "gpg-wrong-remote-id": Reason.GPG_SIGNATURE,
}
SERVER_CASES = [c for c in negatives() if c.get("server")]


def test_every_negative_case_with_a_server_is_classified() -> None:
    assert {c["id"] for c in SERVER_CASES} == set(NEGATIVE_REASONS) | {
        "replay",
        "too-old",
        "too-new",
    }


@pytest.mark.gpg
@pytest.mark.parametrize("case_id", sorted(NEGATIVE_REASONS))
def test_negative_cases_are_refused_for_fwknopds_reason(
    case_id: str, tmp_path: Path, homes: GpgHomes
) -> None:
    case = _negative(case_id)
    stanzas = _stanzas(case["server"]["access_conf"], tmp_path, homes)
    processor = Processor(stanzas, Settings(), replay=MemoryReplay())
    payload = case["sent_packet"].encode("latin-1")
    now = case["fields"]["timestamp"] if "fields" in case else NOW  # junk has no timestamp
    decision = settle(processor.process(Packet(payload, SRC, DST), now=now))
    assert isinstance(decision, Refused), decision
    assert decision.reason is NEGATIVE_REASONS[case_id]
    logged = " ".join(case["server"]["log_excerpt"])
    assert decision.silent == ("nothing logged" in logged)


@pytest.mark.parametrize(("case_id", "skew"), [("too-old", 300), ("too-new", -300)])
def test_stale_packets_are_refused_with_the_time_difference(
    case_id: str, skew: int, tmp_path: Path
) -> None:
    case = _negative(case_id)
    processor = Processor(_stanzas(case["server"]["access_conf"], tmp_path), Settings())
    now = case["fields"]["timestamp"] + skew
    decision = processor.process(Packet(case["sent_packet"].encode(), SRC, DST), now=now)
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.STALE
    assert decision.detail == "300 seconds"
    logged = " ".join(case["server"]["log_excerpt"])
    assert "(300 seconds)" in logged


def test_replay_is_refused_and_remembered_before_policy(tmp_path: Path) -> None:
    case = _negative("replay")
    replay = MemoryReplay()
    processor = Processor(_stanzas(case["server"]["access_conf"], tmp_path), Settings(), replay)
    packet = Packet(case["sent_packet"].encode(), SRC, DST)
    now = case["fields"]["timestamp"]
    assert isinstance(processor.process(packet, now), Accepted)
    second = processor.process(packet, now)
    assert isinstance(second, Refused)
    assert second.reason is Reason.REPLAY
    # a packet refused for its age is remembered too (fwknopd adds it right after decryption)
    stale = Packet(_negative("too-old")["sent_packet"].encode(), SRC, DST)
    processor.process(stale, now + 10_000)
    # each by fwknopd's digest of its text and by the digest of its message
    assert len(replay.digests) == 4
    assert replay_digest(case["sent_packet"]) in replay.digests


KEY = RijndaelKey(b"k" * 32)
HKEY = HmacKey(b"h" * 64)
OTHER_KEY = RijndaelKey(b"o" * 32)
OTHER_HKEY = HmacKey(b"p" * 64)
NOW = 1_795_268_000


def _conf(key: RijndaelKey, hkey: HmacKey, extra: str = "", source: str = "ANY") -> str:
    return (
        f"SOURCE {source}\nKEY_BASE64 {key.to_base64()}\nHMAC_KEY_BASE64 {hkey.to_base64()}\n"
        f"{extra}\n"
    )


def _packet(message: SpaMessage, key: RijndaelKey = KEY, hkey: HmacKey = HKEY) -> Packet:
    return Packet(build_packet(message, key, hmac_key=hkey).encode(), SRC, DST)


def _msg(access: str = "tcp/22", allow: str = "198.18.0.2", **kwargs: Any) -> SpaMessage:
    return SpaMessage.access_request(allow, access, username="u", now=NOW, **kwargs)


def test_the_first_stanza_that_accepts_wins(tmp_path: Path) -> None:
    stanzas = _stanzas(
        _conf(OTHER_KEY, OTHER_HKEY)
        + _conf(KEY, HKEY, "OPEN_PORTS tcp/80")
        + _conf(KEY, HKEY, "FW_ACCESS_TIMEOUT 77"),
        tmp_path,
    )
    decision = Processor(stanzas, Settings()).process(_packet(_msg()), NOW)
    assert isinstance(decision, Accepted)
    assert decision.grant.stanza == 3 and decision.grant.timeout == 77


def test_refusal_names_the_stanza_that_got_furthest(tmp_path: Path) -> None:
    stanzas = _stanzas(
        _conf(OTHER_KEY, OTHER_HKEY) + _conf(KEY, HKEY, "OPEN_PORTS tcp/80"), tmp_path
    )
    decision = Processor(stanzas, Settings()).process(_packet(_msg()), NOW)
    assert isinstance(decision, Refused)
    assert (decision.reason, decision.stanza, decision.detail) == (Reason.PORTS, 2, "tcp/22")
    assert [(n, r) for n, r, _d in decision.attempts] == [
        (1, Reason.HMAC_MISMATCH),
        (2, Reason.PORTS),
    ]


def test_zero_allow_ip_means_the_packet_source(tmp_path: Path) -> None:
    processor = Processor(_stanzas(_conf(KEY, HKEY), tmp_path), Settings())
    decision = processor.process(_packet(_msg(allow="0.0.0.0")), NOW)
    assert isinstance(decision, Accepted)
    assert decision.grant.source == SRC


def test_client_timeout_is_capped_by_max_fw_timeout(tmp_path: Path) -> None:
    processor = Processor(_stanzas(_conf(KEY, HKEY, "MAX_FW_TIMEOUT 60"), tmp_path), Settings())
    decision = processor.process(_packet(_msg(client_timeout=5000)), NOW)
    assert isinstance(decision, Accepted)
    assert (decision.grant.timeout, decision.grant.expires) == (60, NOW + 60)


def test_destination_must_match_when_set(tmp_path: Path) -> None:
    stanzas = _stanzas(_conf(KEY, HKEY, "DESTINATION 203.0.113.0/24"), tmp_path)
    decision = Processor(stanzas, Settings()).process(_packet(_msg()), NOW)
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.DESTINATION


def test_test_mode_decides_but_does_not_remember(tmp_path: Path) -> None:
    replay = MemoryReplay()
    processor = Processor(_stanzas(_conf(KEY, HKEY), tmp_path), Settings(test_mode=True), replay)
    decision = processor.process(_packet(_msg()), NOW)
    assert isinstance(decision, Accepted) and decision.test_only
    assert replay.digests == {}


def test_http_with_x_forwarded_for(tmp_path: Path) -> None:
    wire = build_packet(_msg(allow="0.0.0.0"), KEY, hmac_key=HKEY)
    request = encode_http_request(wire, host="198.18.0.1").replace(
        b"Connection: close", b"X-Forwarded-For: 203.0.113.9\r\nConnection: close"
    )
    stanzas = _stanzas(_conf(KEY, HKEY), tmp_path)
    plain = Processor(stanzas, Settings(http=True)).process(Packet(request, SRC, DST, 6), NOW)
    assert isinstance(plain, Accepted) and plain.grant.source == SRC
    xff = Processor(stanzas, Settings(http=True, x_forwarded_for=True))
    decision = xff.process(Packet(request, SRC, DST, 6), NOW)
    assert isinstance(decision, Accepted)
    assert str(decision.grant.source) == "203.0.113.9"
    no_agent = request.replace(b"User-Agent: Fwknop/2.6.10", b"User-Agent: curl/8")
    refused = xff.process(Packet(no_agent, SRC, DST, 6), NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.NOT_SPA


def test_ipv6_sources_need_a_firewall_that_can_open_for_them(tmp_path: Path) -> None:
    stanzas = _stanzas(_conf(KEY, HKEY), tmp_path)
    src6 = ipaddress.ip_address("2001:db8::2")
    packet = Packet(build_packet(_msg(allow="0.0.0.0"), KEY, hmac_key=HKEY).encode(), src6, None)
    refused = Processor(stanzas, Settings()).process(packet, NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.IPV6_ALLOW
    accepted = Processor(stanzas, Settings(ipv6_grants=True)).process(packet, NOW)
    assert isinstance(accepted, Accepted) and accepted.grant.source == src6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.binary(max_size=1600)
    | st.text("ABCDEFabcdef0123456789+/=", max_size=1600).map(str.encode)
)
def test_nothing_in_a_packet_makes_the_processor_raise(payload: bytes) -> None:
    stanzas = load_access_cached()
    decision = Processor(stanzas, Settings(http=True)).process(Packet(payload, SRC, DST), NOW)
    assert isinstance(decision, Refused)


_CACHED: tuple[AccessStanza, ...] = ()


def load_access_cached() -> tuple[AccessStanza, ...]:
    global _CACHED  # noqa: PLW0603 - hypothesis calls the test many times; parse once
    if not _CACHED:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "a.conf"
            # one stanza with HMAC, one legacy stanza without: both paths get junk
            path.write_text(_conf(KEY, HKEY) + f"SOURCE ANY\nKEY_BASE64 {OTHER_KEY.to_base64()}\n")
            _CACHED = load_access([path])
    return _CACHED


def test_an_empty_sqlite_cache_still_protects(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "r.sqlite", max_age=120, now=NOW)
    assert len(cache) == 0  # empty, hence falsy: must still be the cache in use
    processor = Processor(_stanzas(_conf(KEY, HKEY), tmp_path), Settings(), cache)
    packet = _packet(_msg())
    assert isinstance(processor.process(packet, NOW), Accepted)
    second = processor.process(packet, NOW)
    assert isinstance(second, Refused) and second.reason is Reason.REPLAY


def test_junk_failing_every_hmac_is_refused_as_the_long_way_would(tmp_path: Path) -> None:
    stanzas = _stanzas(
        _conf(OTHER_KEY, OTHER_HKEY) + _conf(KEY, HKEY) + _conf(KEY, OTHER_HKEY), tmp_path
    )
    processor = Processor(stanzas, Settings())
    junk = Packet(b"8" + b"A" * 203, SRC, DST)
    first = processor.process(junk, NOW)
    assert isinstance(first, Refused)
    assert (first.reason, first.stanza, first.detail) == (Reason.HMAC_MISMATCH, 1, "")
    assert first.attempts == ((1, Reason.HMAC_MISMATCH, ""), (2, Reason.HMAC_MISMATCH, ""),
                              (3, Reason.HMAC_MISMATCH, ""))  # fmt: skip
    assert processor.process(junk, NOW) is first  # the flood case: no new object per packet
    # the same packet through the stanza-by-stanza path gives the same verdict
    long_way = processor.process(junk._replace(screened=LONG_WAY), NOW)
    assert long_way == first
    # a stanza with a check before the HMAC (DESTINATION) takes the long way, with its reason
    with_dest = _stanzas(_conf(KEY, HKEY, "DESTINATION 203.0.113.0/24"), tmp_path)
    refused = Processor(with_dest, Settings()).process(junk, NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.DESTINATION


@settings(max_examples=60, deadline=None)
@given(
    hmac_type=st.sampled_from(list(HmacType)),
    secret=st.binary(min_size=1, max_size=128),
    body=st.text("ABCDEFabcdef0123456789+/", min_size=0, max_size=600).map(str.encode),
    gpg=st.booleans(),
)
def test_the_servers_hmac_check_agrees_with_the_core(
    hmac_type: HmacType, secret: bytes, body: bytes, gpg: bool
) -> None:
    key = HmacKey(secret, hmac_type)
    kind = EncryptionType.GPG if gpg else EncryptionType.RIJNDAEL
    prefix = b"hQ" if gpg else b"U2FsdGVkX1"
    signed = body + key.mac(prefix + body)
    # the screen, for a stanza with this key
    stanza = AccessStanza(
        1, Path("access.conf"), 1, "ANY", (ipaddress.ip_network("0.0.0.0/0"),),
        key=None if gpg else KEY, hmac_key=key,
        gpg=GpgPolicy("/nonexistent", "gpg", None, None, True, False, frozenset(), frozenset())
        if gpg else None,
    )  # fmt: skip
    screen = Processor([stanza], Settings()).screen
    for data in (
        signed,
        signed[:-1] + (b"B" if signed[-1:] == b"A" else b"A"),  # MAC tampered
        b"x" + signed[1:],  # data tampered
        body,  # no MAC at all
    ):
        matches = hmac_matches(data, key, kind)
        sized = len(data) >= MIN_PACKET and (len(data) >= MIN_GPG_PACKET) == gpg
        if sized and not data.startswith(b"hQ"):
            verdict = screen.check(data, SRC)
            assert isinstance(verdict, MacMatch) == matches, data
            assert isinstance(verdict, MacMatch) or verdict.reason is Reason.HMAC_MISMATCH
    if len(body) >= 36:  # libfko's floor for what the MAC covers
        assert hmac_matches(signed, key, kind)


def test_a_valid_packet_passes_the_cheap_path_and_is_opened(tmp_path: Path) -> None:
    # the screen lets it through for the stanza whose HMAC it carries (the second one),
    # after the first stanza's HMAC failed: the long way then decides it
    stanzas = _stanzas(_conf(OTHER_KEY, OTHER_HKEY) + _conf(KEY, HKEY), tmp_path)
    decision = Processor(stanzas, Settings()).process(_packet(_msg()), NOW)
    assert isinstance(decision, Accepted) and decision.grant.stanza == 2


def test_a_stanza_with_a_key_too_long_to_use_refuses_every_packet(tmp_path: Path) -> None:
    """fwknopd 2.6.10 loads a stanza whose HMAC key is over 136 bytes and can use none of it.

    Ours loads it too, and it must not become a stanza without an HMAC: a packet
    made with its encryption key, with or without an HMAC, gets nothing.
    """
    long_hmac = HmacKey(b"h" * 136)
    too_long = base64.b64encode(b"h" * 140).decode()
    text = _conf(KEY, long_hmac).replace(long_hmac.to_base64(), too_long)
    stanzas = _stanzas(text, tmp_path)
    assert stanzas[0].unusable is not None
    processor = Processor(stanzas, _settings_for(""), replay=MemoryReplay())
    for hkey in (None, long_hmac, HKEY):
        packet = Packet(build_packet(_msg(), KEY, hmac_key=hkey).encode(), SRC, DST)
        decision = settle(processor.process(packet, NOW))
        assert isinstance(decision, Refused), hkey
        assert decision.reason is Reason.NO_DECRYPTION
