"""The x25519 format's test vectors: made from fixed keys and nonces, kept in tests/data.

    python -m tests.helpers.x25519_vectors        # rewrite tests/data/x25519-vectors.json

The keys and nonces are SHA-256 of fixed labels, so anyone can make them
again. tests/core/test_x25519_vectors.py checks that this module still
produces the committed file byte for byte, and that the packets in it open
to the recorded fields (with fwknop_core and with a decoder written from
docs/x25519-spa.md alone). Negative cases are built with the primitives
directly where the builder refuses to make them (extra padding, a message
not in its canonical encoding).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from fwknop_core import (
    HmacKey,
    MessageType,
    RijndaelKey,
    SpaMessage,
    X25519PrivateKey,
    X25519SharedKey,
    b64s_decode,
    b64s_encode,
    build_packet_from_parts,
    build_x25519_packet_from_parts,
)

PATH = Path(__file__).resolve().parent.parent / "data" / "x25519-vectors.json"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: every vector's timestamp, and the opening "now"
MAX_AGE = 120


def _fixed(label: str) -> bytes:
    return hashlib.sha256(f"fwknop-tui x25519-spa test vector: {label}".encode()).digest()


KEYS = {
    name: X25519PrivateKey(_fixed(f"{name} private key")) for name in ("server", "alice", "bob")
}

# (name, client, fields of the SpaMessage)
_VECTORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("access", "alice", {"message": "198.18.0.2,tcp/22"}),
    ("access-source-address", "alice", {"message": "0.0.0.0,tcp/22"}),
    ("access-several-ports", "alice", {"message": "198.18.0.2,tcp/22,udp/53,tcp/8443"}),
    (
        "client-timeout",
        "alice",
        {"message_type": 3, "message": "198.18.0.2,tcp/22", "client_timeout": 45},
    ),
    (
        "nat-access",
        "alice",
        {"message_type": 2, "message": "198.18.0.2,tcp/40022", "nat_access": "198.18.0.50,22"},
    ),
    (
        "local-nat-client-timeout",
        "alice",
        {
            "message_type": 6,
            "message": "198.18.0.2,tcp/40022",
            "nat_access": "spa.example.org,22",
            "client_timeout": 600,
        },
    ),
    ("command", "alice", {"message_type": 0, "message": "198.18.0.2,touch /tmp/knocked"}),
    ("ipv6-allow-ip", "alice", {"message": "2001:db8::2,tcp/22"}),
    ("server-auth", "alice", {"message": "198.18.0.2,tcp/22", "server_auth": "crypt-pw"}),
    (
        "long-message",
        "alice",
        {"message": "198.18.0.2," + ",".join(f"tcp/{p}" for p in range(10000, 10016))},
    ),
    ("access-bob", "bob", {"message": "198.18.0.3,tcp/22", "username": "bob"}),
)


def _message(n: int, fields: dict[str, Any]) -> SpaMessage:
    values: dict[str, Any] = {
        "random_value": f"{int.from_bytes(_fixed(f'random value {n}')[:8], 'big') % 10**16:016d}",
        "username": "alice",
        "timestamp": NOW,
        "message_type": 1,
    } | fields
    values["message_type"] = MessageType(values["message_type"])
    return SpaMessage(**values)


def _shared(client: str) -> X25519SharedKey:
    return X25519SharedKey.for_client(KEYS[client], KEYS["server"].public_key)


def _nonce(name: str) -> bytes:
    return _fixed(f"nonce {name}")[:12]


def _seal_raw(client: str, nonce: bytes, plaintext: bytes) -> str:
    """A packet sealed by hand, for what the builder refuses to make."""
    shared = _shared(client)
    header = ("~1" + shared.key_id_text + b64s_encode(nonce)).encode()
    sealed = ChaCha20Poly1305(shared.key).encrypt(nonce, plaintext, header)
    return (header + b64s_encode(sealed).encode()).decode()


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _flip(text: str, index: int) -> str:
    """``text`` with one base64 character changed (to the next one in the alphabet)."""
    changed = _ALPHABET[(_ALPHABET.index(text[index]) + 1) % 64]
    return text[:index] + changed + text[index + 1 :]


def _non_canonical(wire: str) -> str:
    """The same bytes spelled otherwise: the last character with an unused bit set."""
    assert (len(wire) - 2) % 4 in (2, 3), "the last base64 group must be partial"
    return wire[:-1] + _ALPHABET[_ALPHABET.index(wire[-1]) | 1]


def make() -> dict[str, Any]:
    """Every vector, as the JSON file holds it."""
    server = KEYS["server"]
    keys = {
        name: {
            "private": key.to_text(),
            "public": key.public_key.to_text(),
            "private_hex": key.secret.hex(),
            "public_hex": key.public_key.raw.hex(),
        }
        for name, key in KEYS.items()
    }
    pairs = {}
    for client in ("alice", "bob"):
        shared = _shared(client)
        pairs[client] = {
            "shared_secret_hex": KEYS[client].exchange(server.public_key).hex(),
            "key_hex": shared.key.hex(),
            "key_id_hex": shared.key_id.hex(),
            "key_id_text": shared.key_id_text,
        }
    vectors = []
    wires: dict[str, str] = {}
    for n, (name, client, fields) in enumerate(_VECTORS):
        message = _message(n, fields)
        nonce = _nonce(name)
        wire = build_x25519_packet_from_parts(message, _shared(client), nonce=nonce)
        wires[name] = wire
        encoded = message.encode()
        padded = max(96, -(-len(encoded) // 32) * 32)
        vectors.append(
            {
                "name": name,
                "client": client,
                "nonce_hex": nonce.hex(),
                "fields": {
                    "random_value": message.random_value,
                    "username": message.username,
                    "timestamp": message.timestamp,
                    "version": message.version,
                    "message_type": int(message.message_type),
                    "message": message.message,
                    "nat_access": message.nat_access,
                    "server_auth": message.server_auth,
                    "client_timeout": message.client_timeout,
                },
                "encoded": encoded,
                "plaintext_length": padded,
                "wire": wire,
                "length": len(wire),
            }
        )
    alice_id = pairs["alice"]["key_id_text"]
    bob_id = pairs["bob"]["key_id_text"]
    access = wires["access"]
    stranger = X25519PrivateKey(_fixed("stranger private key"))
    strangers = build_x25519_packet_from_parts(
        _message(0, {"message": "198.18.0.9,tcp/22"}),
        X25519SharedKey.for_client(stranger, server.public_key),
        nonce=_nonce("stranger"),
    )
    base = _message(0, {"message": "198.18.0.2,tcp/22"}).encode().encode()
    long_raw = b64s_decode(wires["long-message"][2:].encode())
    rijndael = build_packet_from_parts(
        _message(0, {"message": "198.18.0.2,tcp/22"}),
        RijndaelKey(_fixed("rijndael key")),
        salt=_fixed("salt")[:8],
        hmac_key=HmacKey(_fixed("hmac key")),
    )
    negative = [
        ("unknown-key-id", strangers, "UNKNOWN_KEY_ID"),
        ("alice-sealed-bob-key-id", access[:2] + bob_id + access[14:], "AUTH_FAILED"),
        ("key-id-changed", _flip(access, 5), "UNKNOWN_KEY_ID"),
        ("nonce-changed", _flip(access, 20), "AUTH_FAILED"),
        ("ciphertext-changed", _flip(access, 40), "AUTH_FAILED"),
        ("tag-changed", _flip(access, len(access) - 3), "AUTH_FAILED"),
        ("version-2", "~2" + access[2:], "UNSUPPORTED_VERSION"),
        ("fwknop-rijndael-packet", rijndael, "WRONG_ENCRYPTION_TYPE"),
        ("not-canonical-base64", _non_canonical(access), "NOT_BASE64"),
        ("padding-character", access + "=", "NOT_BASE64"),
        ("truncated-text", access[:-4], "NOT_BASE64"),
        ("half-block-short", "~1" + b64s_encode(long_raw[:-16]), "BAD_CIPHERTEXT_LENGTH"),
        ("too-short", access[:139], "TOO_SHORT"),
        (
            "padded-too-far",
            _seal_raw("alice", _nonce("padded-too-far"), base.ljust(128, b"\0")),
            "BAD_PLAINTEXT_LENGTH",
        ),
        (
            "not-canonical-message",
            _seal_raw("alice", _nonce("not-canonical-message"), (b"0" + base).ljust(96, b"\0")),
            "MALFORMED",
        ),
    ]
    assert alice_id != bob_id
    cases = [{"name": n, "wire": w, "reason": r} for n, w, r in negative]
    cases.append(
        {
            "name": "stale",
            "wire": access,
            "reason": "STALE",
            "now": NOW + MAX_AGE + 1,
        }
    )
    return {
        "format": "fwknop-tui x25519-spa, version 1 (docs/x25519-spa.md)",
        "now": NOW,
        "max_age": MAX_AGE,
        "keys": keys,
        "pairs": pairs,
        "vectors": vectors,
        "negative": cases,
    }


def text() -> str:
    """The JSON file's exact contents."""
    return json.dumps(make(), indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(text(), encoding="utf-8")
    print(f"wrote {PATH}")
