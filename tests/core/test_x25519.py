"""The x25519 format (docs/x25519-spa.md): vectors, round trips, tampering, the keyring's costs."""

from __future__ import annotations

import json
import string
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fwknop_core._x25519 as x25519_module
from fwknop_core import (
    InvalidPacket,
    MessageType,
    RejectReason,
    SpaMessage,
    UsageError,
    X25519Keyring,
    X25519PrivateKey,
    X25519PublicKey,
    X25519SharedKey,
    build_x25519_packet,
    build_x25519_packet_from_parts,
    encode_http_request,
    extract_http_spa,
    looks_like_x25519,
    open_packet,
    open_x25519_packet,
    replay_digest,
)
from tests.core.test_properties import SETTINGS, messages
from tests.helpers import x25519_vectors
from tests.helpers.vectors import rijndael_key, vectors

DATA = json.loads(x25519_vectors.PATH.read_text())
NOW = DATA["now"]
SERVER = X25519PrivateKey.from_text(DATA["keys"]["server"]["private"])
CLIENTS = {n: X25519PrivateKey.from_text(DATA["keys"][n]["private"]) for n in ("alice", "bob")}
B64 = string.ascii_letters + string.digits + "+/"


def keyring() -> X25519Keyring[str]:
    """The server's keyring with alice and bob, each named by a stanza."""
    return X25519Keyring(SERVER, [(c.public_key, f"stanza {n}") for n, c in CLIENTS.items()])


def shared(name: str) -> X25519SharedKey:
    """A client's side of its pair with the vector server."""
    return X25519SharedKey.for_client(CLIENTS[name], SERVER.public_key)


def message_of(fields: dict[str, Any]) -> SpaMessage:
    """The recorded fields as a message."""
    return SpaMessage(**(fields | {"message_type": MessageType(fields["message_type"])}))


# -- the vectors ----------------------------------------------------------------------------


def test_the_committed_vectors_are_what_the_generator_makes() -> None:
    assert x25519_vectors.PATH.read_text() == x25519_vectors.text()


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_both_sides_derive_the_recorded_pair(name: str) -> None:
    pair = DATA["pairs"][name]
    client, server = CLIENTS[name], SERVER
    assert client.exchange(server.public_key).hex() == pair["shared_secret_hex"]
    assert server.exchange(client.public_key).hex() == pair["shared_secret_hex"]
    for side in (shared(name), X25519SharedKey.for_server(server, client.public_key)):
        assert side.key.hex() == pair["key_hex"]
        assert side.key_id.hex() == pair["key_id_hex"]
        assert side.key_id_text == pair["key_id_text"]


def test_the_recorded_keys_print_as_recorded() -> None:
    for name, key in [("server", SERVER), *CLIENTS.items()]:
        recorded = DATA["keys"][name]
        assert key.secret.hex() == recorded["private_hex"]
        assert key.public_key.raw.hex() == recorded["public_hex"]
        assert key.public_key.to_text() == recorded["public"]
        assert X25519PublicKey.from_text(recorded["public"]) == key.public_key


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: v["name"])
def test_each_vector_is_rebuilt_byte_for_byte(vector: dict[str, Any]) -> None:
    message = message_of(vector["fields"])
    assert message.encode() == vector["encoded"]
    nonce = bytes.fromhex(vector["nonce_hex"])
    wire = build_x25519_packet_from_parts(message, shared(vector["client"]), nonce=nonce)
    assert wire == vector["wire"]
    assert len(wire) == vector["length"]


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: v["name"])
def test_each_vector_opens_to_the_recorded_fields(vector: dict[str, Any]) -> None:
    opened = keyring().open(vector["wire"], now=NOW, max_age=DATA["max_age"])
    assert opened.message == message_of(vector["fields"])
    assert opened.encoded == vector["encoded"]
    assert opened.key_id == DATA["pairs"][vector["client"]]["key_id_text"]
    assert opened.nonce.hex() == vector["nonce_hex"]
    assert opened.client == CLIENTS[vector["client"]].public_key
    assert opened.owners == (f"stanza {vector['client']}",)
    server_side = X25519SharedKey.for_server(SERVER, CLIENTS[vector["client"]].public_key)
    alone = open_x25519_packet(vector["wire"].encode(), server_side, now=NOW, max_age=120)
    assert alone.message == opened.message
    assert alone.owners == ()


@pytest.mark.parametrize("case", DATA["negative"], ids=lambda c: c["name"])
def test_each_negative_vector_is_refused_for_its_reason(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidPacket) as refused:
        keyring().open(case["wire"], now=case.get("now", NOW), max_age=DATA["max_age"])
    assert refused.value.reason is RejectReason[case["reason"]]


def test_every_rejection_reason_of_the_format_has_a_negative_vector() -> None:
    reasons = {c["reason"] for c in DATA["negative"]}
    assert reasons >= {
        "TOO_SHORT",
        "WRONG_ENCRYPTION_TYPE",
        "UNSUPPORTED_VERSION",
        "UNKNOWN_KEY_ID",
        "NOT_BASE64",
        "BAD_CIPHERTEXT_LENGTH",
        "AUTH_FAILED",
        "BAD_PLAINTEXT_LENGTH",
        "MALFORMED",
        "STALE",
    }


# -- round trips and tampering ----------------------------------------------------------------


@SETTINGS
@given(
    message=messages(),
    nonce=st.binary(min_size=12, max_size=12),
    who=st.sampled_from(["alice", "bob"]),
)
def test_any_message_round_trips(message: SpaMessage, nonce: bytes, who: str) -> None:
    wire = build_x25519_packet_from_parts(message, shared(who), nonce=nonce)
    assert looks_like_x25519(wire)
    assert 140 <= len(wire) < 1500
    opened = keyring().open(wire)
    assert opened.message == message
    assert opened.owners == (f"stanza {who}",)


@SETTINGS
@given(message=messages(), index=st.integers(0, 10_000), char=st.sampled_from(B64 + "~=!\0 "))
def test_any_changed_character_is_refused(message: SpaMessage, index: int, char: str) -> None:
    wire = build_x25519_packet(message, shared("alice"))
    index %= len(wire)
    if wire[index] == char:
        return
    with pytest.raises(InvalidPacket):
        keyring().open(wire[:index] + char + wire[index + 1 :])


def test_every_byte_of_a_packet_changed_every_way_is_refused() -> None:
    wire = DATA["vectors"][0]["wire"]
    ring = keyring()
    reasons: Counter[RejectReason] = Counter()
    for index in range(len(wire)):
        for char in B64 + "~=!\0 ":
            if char == wire[index]:
                continue
            with pytest.raises(InvalidPacket) as refused:
                ring.open(wire[:index] + char + wire[index + 1 :], now=NOW, max_age=120)
            reasons[refused.value.reason] += 1
    assert reasons[RejectReason.AUTH_FAILED] > reasons[RejectReason.UNKNOWN_KEY_ID] > 0
    assert ring.open(wire, now=NOW).message.message == "198.18.0.2,tcp/22"  # still opens


def test_truncated_and_extended_packets_are_refused() -> None:
    wire = DATA["vectors"][0]["wire"]
    for cut in range(1, len(wire) - 139):
        with pytest.raises(InvalidPacket):
            keyring().open(wire[:-cut])
    for extra in ("A", "AA", "AAA", "AAAA", "A" * 43):
        with pytest.raises(InvalidPacket):
            keyring().open(wire + extra)


def test_a_packet_for_alice_with_bobs_key_id_is_refused() -> None:
    wire = build_x25519_packet(
        SpaMessage.access_request("198.18.0.2", "tcp/22", username="a"), shared("alice")
    )
    forged = wire[:2] + shared("bob").key_id_text + wire[14:]
    with pytest.raises(InvalidPacket) as refused:
        keyring().open(forged)
    assert refused.value.reason is RejectReason.AUTH_FAILED
    alone = X25519Keyring(SERVER, [(CLIENTS["bob"].public_key, "bob only")])
    with pytest.raises(InvalidPacket) as refused:
        alone.open(wire)
    assert refused.value.reason is RejectReason.UNKNOWN_KEY_ID


def test_a_packet_for_another_server_is_refused() -> None:
    other = X25519PrivateKey.generate()
    wire = build_x25519_packet(
        SpaMessage.access_request("198.18.0.2", "tcp/22", username="a"),
        X25519SharedKey.for_client(CLIENTS["alice"], other.public_key),
    )
    with pytest.raises(InvalidPacket) as refused:
        keyring().open(wire)
    assert refused.value.reason is RejectReason.UNKNOWN_KEY_ID  # the id binds the server key too


# -- the keyring's costs ------------------------------------------------------------------------


class _Spy:
    """Stands in for an AEAD, a KDF or an X25519 module and counts every use."""

    def __init__(self, calls: Counter[str], name: str, real: Any = None) -> None:
        self._calls, self._name, self._real = calls, name, real

    def __getattr__(self, attr: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[f"{self._name}.{attr}"] += 1
            return getattr(self._real, attr)(*args, **kwargs)

        return call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._calls[self._name] += 1
        return self._real(*args, **kwargs)


def test_an_unknown_key_id_is_refused_and_counted_without_any_cryptography(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ring = keyring()
    stranger = X25519SharedKey.for_client(X25519PrivateKey(bytes(range(32))), SERVER.public_key)
    message = SpaMessage.access_request("198.18.0.2", "tcp/22", username="x", now=NOW)
    junk = [build_x25519_packet(message, stranger) for _ in range(50)]
    junk += ["~1" + "".join(B64[(i * 7 + j) % 64] for j in range(178)) for i in range(50)]
    calls: Counter[str] = Counter()
    for client in ring:  # every AEAD the keyring holds, and every primitive it could reach
        object.__setattr__(client.shared, "_aead", _Spy(calls, "aead", client.shared._aead))
    for name in ("ChaCha20Poly1305", "HKDF", "_x25519", "hashlib"):
        real = getattr(x25519_module, name)
        monkeypatch.setattr(x25519_module, name, _Spy(calls, name, real))
    refusals: Counter[RejectReason] = Counter()
    for wire in junk:
        assert ring.lookup(wire.encode()) is None
        try:
            ring.open(wire)
        except InvalidPacket as exc:
            refusals[exc.reason] += 1
    assert refusals == Counter({RejectReason.UNKNOWN_KEY_ID: 100})
    assert not calls, calls
    # the control: a known id with a bad tag costs exactly one AEAD verification
    wire = DATA["vectors"][0]["wire"]
    with pytest.raises(InvalidPacket) as refused:
        ring.open(wire[:-3] + ("A" if wire[-3] != "A" else "B") + wire[-2:])
    assert refused.value.reason is RejectReason.AUTH_FAILED
    assert calls == Counter({"aead.decrypt": 1})


def test_lookup_finds_the_one_client_on_the_text_alone() -> None:
    ring = keyring()
    for vector in DATA["vectors"]:
        found = ring.lookup(vector["wire"].encode())
        assert found is not None
        assert found.shared.client == CLIENTS[vector["client"]].public_key
        assert ring.find(vector["wire"]) is found
    assert ring.lookup(b"") is None
    assert ring.lookup(vectors()[0]["spa_packet"].encode()) is None


def test_a_key_named_by_several_owners_is_derived_once_and_keeps_them_in_order() -> None:
    alice = CLIENTS["alice"].public_key
    ring = X25519Keyring(SERVER, [(alice, 3), (CLIENTS["bob"].public_key, 1), (alice, 7)])
    assert len(ring) == 2
    assert ring.open(DATA["vectors"][0]["wire"]).owners == (3, 7)


def test_a_low_order_client_key_is_refused_at_load() -> None:
    with pytest.raises(UsageError, match="low-order"):
        X25519Keyring(SERVER, [(X25519PublicKey(bytes(32)), "bad")])


def test_two_client_keys_with_one_key_id_are_refused_at_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(x25519_module, "key_id", lambda client, server: b"\0" * 9)
    with pytest.raises(UsageError, match="same key id"):
        X25519Keyring(SERVER, [(c.public_key, n) for n, c in CLIENTS.items()])


# -- never confused with fwknop's formats ---------------------------------------------------


def test_no_fwknop_packet_looks_like_ours_and_each_is_refused_before_any_key() -> None:
    ring = keyring()
    for vector in vectors():
        data = vector["spa_packet"]
        assert not looks_like_x25519(data)
        assert ring.lookup(data.encode()) is None
        with pytest.raises(InvalidPacket) as refused:
            ring.find(data)
        assert refused.value.reason in (RejectReason.WRONG_ENCRYPTION_TYPE, RejectReason.TOO_SHORT)


def test_fwknops_opener_refuses_ours_as_fwknopd_does_not_base64() -> None:
    vector = vectors()[0]
    key = rijndael_key(vector["keys"])
    for ours in DATA["vectors"]:
        with pytest.raises(InvalidPacket) as refused:
            open_packet(ours["wire"], key)
        assert refused.value.reason is RejectReason.NOT_BASE64


def test_the_packet_survives_fwknops_http_transport() -> None:
    wire = DATA["vectors"][0]["wire"]
    request = encode_http_request(wire, host="spa.example.org")
    extracted = extract_http_spa(request)
    assert extracted is not None and extracted.data == wire
    assert replay_digest(extracted.data) == replay_digest(wire)
    assert keyring().open(extracted.data, now=NOW).message.username == "alice"


# -- building and keys ----------------------------------------------------------------------


def test_each_build_draws_a_fresh_nonce_and_rng_makes_it_reproducible() -> None:
    message = SpaMessage.access_request("198.18.0.2", "tcp/22", username="alice")
    assert build_x25519_packet(message, shared("alice")) != build_x25519_packet(
        message, shared("alice")
    )
    fixed = build_x25519_packet(message, shared("alice"), rng=lambda n: b"\x07" * n)
    assert fixed == build_x25519_packet_from_parts(message, shared("alice"), nonce=b"\x07" * 12)


def test_builder_refuses_caller_mistakes() -> None:
    message = SpaMessage.access_request("198.18.0.2", "tcp/22", username="alice")
    with pytest.raises(UsageError):
        build_x25519_packet_from_parts(message, shared("alice"), nonce=b"short")
    with pytest.raises(TypeError):
        build_x25519_packet_from_parts("text", shared("alice"), nonce=bytes(12))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        open_x25519_packet(DATA["vectors"][0]["wire"], SERVER)  # type: ignore[arg-type]


def test_the_age_check_uses_the_injected_clock() -> None:
    wire = DATA["vectors"][0]["wire"]
    assert keyring().open(wire, now=NOW + 120, max_age=120).message.timestamp == NOW
    with pytest.raises(InvalidPacket) as refused:
        keyring().open(wire, now=NOW - 121, max_age=120)
    assert refused.value.reason is RejectReason.STALE


def test_key_texts_round_trip_and_never_show_the_secret() -> None:
    key = X25519PrivateKey.generate()
    assert X25519PrivateKey.from_text(key.to_text()) == key
    assert X25519PublicKey.from_text("  " + key.public_key.to_text() + "\n") == key.public_key
    assert key.to_text().startswith("x25519-priv:") and len(key.to_text()) == 12 + 44
    assert key.public_key.to_text().startswith("x25519-pub:")
    shown = repr(key) + repr(X25519SharedKey.for_client(key, SERVER.public_key))
    assert key.to_text()[12:] not in shown and key.secret.hex() not in shown
    assert key.public_key.to_text() in repr(key)


def test_a_private_key_offered_as_public_is_refused_without_showing_it() -> None:
    key = X25519PrivateKey.generate()
    with pytest.raises(UsageError, match="private key") as refused:
        X25519PublicKey.from_text(key.to_text())
    assert key.to_text()[12:] not in str(refused.value)
    with pytest.raises(UsageError, match="public key"):
        X25519PrivateKey.from_text(key.public_key.to_text())


@pytest.mark.parametrize(
    "text",
    ["", "x25519-pub:", "x25519-pub:AAAA", "x25519-pub:!!!", "AAAA" * 11, "x25519-pub:" + "A" * 48],
)
def test_malformed_public_keys_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        X25519PublicKey.from_text(text)


@pytest.mark.parametrize(
    "text", [b"A", b"AB", b"AAB", b"AA=", b"AB==", b"ABC=", b"AB!C", b"AB C", b"AB\nC", b"AB-_"]
)
def test_the_strict_decoder_refuses_every_other_spelling(text: bytes) -> None:
    from fwknop_core._b64 import b64s_decode_strict

    with pytest.raises(ValueError, match=r"after the data|dangling|unused bits|outside the base64"):
        b64s_decode_strict(text)
