"""fwknop 1.x knock sequences: the 1.9.12 client's recorded sequences decode; ours match."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fwknop_core import (
    InvalidKnockSequence,
    KnockKey,
    KnockReject,
    KnockRequest,
    KnockStep,
    UsageError,
    build_knock_sequence,
    build_knock_sequence_from_parts,
    decode_knock_sequence,
    knock_checksum,
    legacy_access,
    parse_shared_sequence,
)
from fwknop_core._primitives import SALTED, aes_encrypt, derive_key_iv
from fwknop_core._types import EncryptionMode
from tests.helpers import lkdecode
from tests.helpers.legacy import (
    argv_value,
    case,
    cipher_ports,
    encrypted,
    request_of,
    shared,
    wire_ports,
)

ENCRYPTED = encrypted()
IDS = [c["id"] for c in ENCRYPTED]


def test_vector_counts() -> None:
    assert len(ENCRYPTED) == 17
    assert len(shared()) == 2


@pytest.mark.parametrize("c", ENCRYPTED, ids=IDS)
def test_recorded_sequence_decodes_to_the_recorded_fields(c: dict[str, Any]) -> None:
    ports = wire_ports(c) if c["wire_matches_ciphertext"] else cipher_ports(c)
    got = decode_knock_sequence(ports, KnockKey.from_passphrase(c["key"]), offset=c["port_offset"])
    want = c["expected"]
    assert got.request.allow_ip == want["allow_ip"]
    assert got.request.port == want["port"]
    assert got.request.proto == want["proto_num"]
    assert got.request.proto_name == want["proto"]
    assert got.request.username.decode() == want["username_full"]
    assert got.knocks == want["sequence_length"]
    assert got.padded
    assert got.ciphertext.hex() == c["ciphertext_hex"]
    assert got.request.plaintext().hex() == c["cleartext_hex"]
    assert knock_checksum(got.request.plaintext()) == want["checksum"]


@pytest.mark.parametrize("c", ENCRYPTED, ids=IDS)
def test_first_32_knocks_give_what_the_1x_server_saw(c: dict[str, Any]) -> None:
    key = KnockKey.from_passphrase(c["key"])
    got = decode_knock_sequence(cipher_ports(c)[:32], key, offset=c["port_offset"])
    want = c["expected"]
    assert got.request.username.decode() == want["username_seen_by_1x_server"]
    assert got.request.access == f"{want['proto']}/{want['port']}"
    # a complete 32-knock sequence ends in valid padding; the head of a 48 does not
    assert got.padded is (want["sequence_length"] == 32)
    assert (
        len(c["knocks"]) - 32 - (not c["wire_matches_ciphertext"])
        == (want["stray_knocks_left_by_1x_server"])
    )


@pytest.mark.parametrize("c", ENCRYPTED, ids=IDS)
def test_our_builder_reproduces_the_recorded_ciphertext(c: dict[str, Any]) -> None:
    request = request_of(c)
    assert request.plaintext().hex() == c["cleartext_hex"]
    ports = build_knock_sequence_from_parts(
        request,
        KnockKey.from_passphrase(c["key"]),
        bytes.fromhex(c["salt_hex"]),
        offset=int(argv_value(c, "--offset") or 61000),
    )
    assert list(ports) == cipher_ports(c)


def test_drop_policy_capture_carries_one_retransmitted_syn() -> None:
    c = case("enc-drop-policy")
    wire, cipher = wire_ports(c), cipher_ports(c)
    assert len(wire) == 33
    assert wire[:19] + wire[20:] == cipher
    assert c["knock_source_ports"][19] == c["knock_source_ports"][18]


@given(
    ip=st.ip_addresses(v=4).map(str),
    proto_port=st.one_of(
        st.tuples(st.sampled_from([6, 17]), st.integers(1, 65535)), st.just((1, 0))
    ),
    user=st.binary(max_size=30).filter(lambda b: b"\0" not in b),
    key=st.text(min_size=8, max_size=40).filter(lambda k: "\0" not in k),
    offset=st.integers(1, 65280),
    salt=st.binary(min_size=8, max_size=8),
)
def test_what_we_build_decodes_with_the_independent_decoder(  # noqa: PLR0917
    ip: str, proto_port: tuple[int, int], user: bytes, key: str, offset: int, salt: bytes
) -> None:
    proto, port = proto_port
    request = KnockRequest(ip, proto, port, user)
    kkey = KnockKey.from_passphrase(key)
    ports = build_knock_sequence_from_parts(request, kkey, salt, offset=offset)
    assert len(ports) == (32 if len(user) < 8 else 48)
    assert all(offset <= p <= offset + 255 for p in ports)
    theirs = lkdecode.decode(ports, key, offset=offset, nports=len(ports))
    assert (theirs["allow_ip"], theirs["port"], theirs["proto"]) == (ip, port, proto)
    assert theirs["checksum_ok"]
    assert theirs["user"].encode("latin-1") == user[:23]
    ours = decode_knock_sequence(ports, kkey, offset=offset)
    assert ours.request == KnockRequest(ip, proto, port, user[:23])
    assert ours.padded


def test_random_salts_differ_and_still_decode() -> None:
    request = KnockRequest("198.18.5.1", 6, 22, b"root")
    key = KnockKey.from_passphrase("testkey1")
    a, b = build_knock_sequence(request, key), build_knock_sequence(request, key)
    assert a != b
    assert a[:8] == (61083, 61097, 61108, 61116, 61101, 61100, 61095, 61095)
    assert decode_knock_sequence(a, key).request == request


def test_keys_are_padded_with_zeros_and_long_keys_used_whole() -> None:
    assert KnockKey.from_passphrase("testkey1").padded == b"testkey100000000"
    assert (
        KnockKey.from_passphrase("averylongpassphrase-24ch").padded == b"averylongpassphrase-24ch"
    )
    assert "testkey1" not in repr(KnockKey.from_passphrase("testkey1"))


def test_the_builder_refuses_a_key_shorter_than_8_but_decoding_takes_it() -> None:
    request = KnockRequest("198.18.5.1", 6, 22, b"root")
    salt = bytes(8)
    with pytest.raises(UsageError, match="at least 8"):
        build_knock_sequence_from_parts(request, KnockKey(b"short"), salt)
    # made by hand with the 1.x derivation: a 1.x server took short KEYs
    aes_key, iv = derive_key_iv(b"short00000000000", salt)
    block = aes_encrypt(EncryptionMode.CBC, aes_key, iv, request.plaintext() + bytes([4]) * 4)
    ports = [61000 + b for b in SALTED + salt + block]
    assert decode_knock_sequence(ports, KnockKey(b"short")).request == request


def _reason(ports: list[int], key: str = "testkey1", offset: int = 61000) -> KnockReject:
    with pytest.raises(InvalidKnockSequence) as info:
        decode_knock_sequence(ports, KnockKey.from_passphrase(key), offset=offset)
    return info.value.reason


def test_each_refusal_has_its_reason() -> None:
    good = cipher_ports(case("enc-basic-root"))
    assert _reason(good[:31]) is KnockReject.BAD_LENGTH
    assert _reason(good, offset=61200) is KnockReject.OUT_OF_RANGE
    assert _reason([good[1], *good[1:]]) is KnockReject.NOT_SALTED
    # the recorded wrong-key run: "bad protocol number: 248"
    wrong = cipher_ports(case("enc-key10-tcp22"))
    with pytest.raises(InvalidKnockSequence, match="248") as info:
        decode_knock_sequence(wrong, KnockKey.from_passphrase("wrongkey99"))
    assert info.value.reason is KnockReject.BAD_PROTOCOL
    salt = bytes(range(8))
    aes_key, iv = derive_key_iv(b"testkey100000000", salt)

    def made(block: bytes) -> list[int]:
        return [
            61000 + b for b in SALTED + salt + aes_encrypt(EncryptionMode.CBC, aes_key, iv, block)
        ]

    bad_sum = bytes([198, 18, 5, 1, 0, 22, 6, 0]) + bytes([8]) * 8
    assert _reason(made(bad_sum)) is KnockReject.BAD_CHECKSUM
    assert _reason(made(bytes([16]) * 16)) is KnockReject.SHORT_PLAINTEXT


def test_the_exception_names_its_reason_and_pickles() -> None:
    import pickle

    exc = InvalidKnockSequence(KnockReject.BAD_PROTOCOL, "248")
    assert str(exc) == "bad protocol number: 248"
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert (again.reason, again.detail) == (KnockReject.BAD_PROTOCOL, "248")


def test_replay_digest_is_the_ciphertexts() -> None:
    c = case("enc-basic-root")
    key = KnockKey.from_passphrase(c["key"])
    one = decode_knock_sequence(cipher_ports(c), key)
    again = decode_knock_sequence(cipher_ports(c), key)
    assert one.replay_digest == again.replay_digest
    assert len(one.replay_digest) == 43
    other = decode_knock_sequence(cipher_ports(case("enc-drop-policy")), key)
    assert other.request == one.request
    assert other.replay_digest != one.replay_digest
    long = case("enc-user-13chars")
    key = KnockKey.from_passphrase(long["key"])
    whole = decode_knock_sequence(cipher_ports(long), key)
    head = decode_knock_sequence(cipher_ports(long)[:32], key)
    assert whole.replay_digest == head.replay_digest


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("tcp/22", (6, 22)),
        ("udp/53,tcp/22", (6, 53)),  # the recorded quirk: tcp wins, the first number
        ("UDP/5353", (17, 5353)),
        ("icmp/0", (1, 0)),
    ],
)
def test_legacy_access_follows_the_1x_client(text: str, want: tuple[int, int]) -> None:
    assert legacy_access(text) == want


@pytest.mark.parametrize("text", ["tcp/0", "sctp/22", "tcp/70000"])
def test_legacy_access_refuses_what_gives_no_port(text: str) -> None:
    with pytest.raises(UsageError):
        legacy_access(text)


def test_requests_validate_themselves() -> None:
    with pytest.raises(UsageError):
        KnockRequest("198.18.5", 6, 22)
    with pytest.raises(UsageError):
        KnockRequest("198.18.5.1", 2, 22)
    with pytest.raises(UsageError):
        KnockRequest("198.18.5.1", 1, 5)
    assert KnockRequest("0.0.0.0", 6, 22).source_address


@pytest.mark.parametrize("c", shared(), ids=[c["id"] for c in shared()])
def test_recorded_shared_rc_lines_parse_to_the_recorded_knocks(c: dict[str, Any]) -> None:
    steps = parse_shared_sequence(c["rc_line"].split(":", 1)[1])
    assert [(s.proto_name, s.port) for s in steps] == [tuple(k) for k in c["knocks"]]
    assert ", ".join(map(str, steps)) == c["rc_line"].split(": ", 1)[1]


@pytest.mark.parametrize("text", ["", "tcp/5501,", "tcp/", "tcp/0", "sctp/1", "tcp/5501 udp/2"])
def test_shared_sequences_refuse_what_1x_dropped_silently(text: str) -> None:
    with pytest.raises(UsageError):
        parse_shared_sequence(text)


def test_shared_steps_validate_themselves() -> None:
    assert parse_shared_sequence(["tcp/1", "ICMP"]) == (KnockStep(6, 1), KnockStep(1))
    with pytest.raises(UsageError):
        KnockStep(1, 5)
    with pytest.raises(UsageError):
        KnockStep(6, None)
