"""docs/x25519-spa.md is enough to implement the format: a decoder from the page alone.

Nothing here imports fwknop_core's x25519 code: the decoder below follows
the page (primitives from ``cryptography``, ``hashlib`` and ``base64``),
opens every vector in tests/data/x25519-vectors.json and refuses every
negative one; and the worked example printed in the page matches the JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "x25519-spa.md"
DATA = json.loads((ROOT / "tests" / "data" / "x25519-vectors.json").read_text())
B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64s(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64s(text: str) -> bytes:
    """§6 step 5: canonical unpadded base64 only."""
    raw = text.encode()
    if len(raw) % 4 == 1 or raw.translate(None, B64):
        raise ValueError("not base64")
    data = base64.b64decode(raw + b"=" * (-len(raw) % 4))
    if b64s(data) != text:
        raise ValueError("not canonical")
    return data


def key_from_text(text: str, prefix: str) -> bytes:
    assert text.startswith(prefix)
    raw = base64.b64decode(text[len(prefix) :])
    assert len(raw) == 32
    return raw


def pair(server_private: bytes, client_public: bytes) -> tuple[bytes, str]:
    """§3 on the server side: (packet key, key id text)."""
    server = X25519PrivateKey.from_private_bytes(server_private)
    server_public = server.public_key().public_bytes_raw()
    shared = server.exchange(X25519PublicKey.from_public_bytes(client_public))
    assert shared != bytes(32)
    info = b"fwknop-tui x25519-spa v1 client->server key" + client_public + server_public
    key = HKDF(hashes.SHA256(), 32, None, info).derive(shared)
    label = b"fwknop-tui x25519-spa v1 key id"
    key_id = hashlib.sha256(label + client_public + server_public).digest()[:9]
    return key, b64s(key_id)


def fields(encoded: str) -> dict[str, Any]:
    """§4's table, for the messages of the vectors (their types and optional fields)."""

    def text(b64: str) -> str:
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode()

    rand, user, ts, version, mtype, message, *rest = encoded.split(":")
    kind = int(mtype)
    out: dict[str, Any] = {
        "random_value": rand,
        "username": text(user),
        "timestamp": int(ts),
        "version": version,
        "message_type": kind,
        "message": text(message),
        "nat_access": text(rest.pop(0)) if kind in (2, 4, 5, 6) else None,
        "client_timeout": int(rest.pop()) if kind in (3, 4, 6) and rest else 0,
    }
    out["server_auth"] = text(rest.pop(0)) if rest else None
    return out


def canonical(parsed: dict[str, Any]) -> str:
    """§4: encode the parsed fields again."""
    parts = [
        parsed["random_value"],
        b64s(parsed["username"].encode()),
        str(parsed["timestamp"]),
        parsed["version"],
        str(parsed["message_type"]),
        b64s(parsed["message"].encode()),
    ]
    for name in ("nat_access", "server_auth"):
        if parsed[name] is not None:
            parts.append(b64s(parsed[name].encode()))
    if parsed["client_timeout"]:
        parts.append(str(parsed["client_timeout"]))
    return ":".join(parts)


def open_per_spec(
    wire: str, clients: dict[str, bytes], now: int, max_age: int
) -> tuple[str, dict[str, Any]]:
    """§6, step by step: (client name, fields) or ValueError naming the step."""
    if not 140 <= len(wire) < 1500:
        raise ValueError("TOO_SHORT" if len(wire) < 140 else "TOO_LONG")
    if wire[0] != "~":
        raise ValueError("WRONG_ENCRYPTION_TYPE")
    if wire[1] != "1":
        raise ValueError("UNSUPPORTED_VERSION")
    by_id = {pair(SERVER, public)[1]: name for name, public in clients.items()}
    name = by_id.get(wire[2:14])
    if name is None:
        raise ValueError("UNKNOWN_KEY_ID")
    try:
        raw = unb64s(wire[2:])
    except ValueError:
        raise ValueError("NOT_BASE64") from None
    nonce, sealed = raw[9:21], raw[21:]
    if len(sealed) - 16 < 96 or (len(sealed) - 16) % 32:
        raise ValueError("BAD_CIPHERTEXT_LENGTH")
    key, _ = pair(SERVER, clients[name])
    try:
        plain = ChaCha20Poly1305(key).decrypt(nonce, sealed, wire[:30].encode())
    except InvalidTag:
        raise ValueError("AUTH_FAILED") from None
    encoded = plain.rstrip(b"\0")
    if len(plain) != max(96, -(-len(encoded) // 32) * 32):
        raise ValueError("BAD_PLAINTEXT_LENGTH")
    parsed = fields(encoded.decode())
    if len(parsed["random_value"]) != 16 or canonical(parsed) != encoded.decode():
        raise ValueError("MALFORMED")
    if abs(now - parsed["timestamp"]) > max_age:
        raise ValueError("STALE")
    return name, parsed


SERVER = key_from_text(DATA["keys"]["server"]["private"], "x25519-priv:")
CLIENTS = {n: key_from_text(DATA["keys"][n]["public"], "x25519-pub:") for n in ("alice", "bob")}


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: v["name"])
def test_the_page_opens_every_vector(vector: dict[str, Any]) -> None:
    name, parsed = open_per_spec(vector["wire"], CLIENTS, DATA["now"], DATA["max_age"])
    assert name == vector["client"]
    assert parsed == vector["fields"]


@pytest.mark.parametrize("case", DATA["negative"], ids=lambda c: c["name"])
def test_the_page_refuses_every_negative_vector_for_its_reason(case: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"^{case['reason']}$"):
        open_per_spec(case["wire"], CLIENTS, case.get("now", DATA["now"]), DATA["max_age"])


def test_the_page_builds_the_first_vector_from_its_parts() -> None:
    vector = DATA["vectors"][0]
    key, key_id = pair(SERVER, CLIENTS["alice"])
    nonce = bytes.fromhex(vector["nonce_hex"])
    encoded = vector["encoded"].encode()
    plain = encoded + bytes(max(96, -(-len(encoded) // 32) * 32) - len(encoded))
    header = "~1" + key_id + b64s(nonce)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, plain, header.encode())
    assert header + b64s(sealed) == vector["wire"]


def test_the_worked_example_in_the_page_is_the_first_vector() -> None:
    block = DOC.read_text().split("```text\n", 1)[1].split("```", 1)[0]
    shown = dict(re.findall(r"^(\w+): (.*)$", block, flags=re.M))
    vector, keys, alice = DATA["vectors"][0], DATA["keys"], DATA["pairs"]["alice"]
    wire = vector["wire"]
    encoded = vector["encoded"].encode()
    expected = {
        "server_private": keys["server"]["private_hex"],
        "server_public": keys["server"]["public_hex"],
        "server_public_text": keys["server"]["public"],
        "client_private": keys["alice"]["private_hex"],
        "client_private_text": keys["alice"]["private"],
        "client_public": keys["alice"]["public_hex"],
        "client_public_text": keys["alice"]["public"],
        "shared": alice["shared_secret_hex"],
        "key": alice["key_hex"],
        "key_id": alice["key_id_hex"],
        "key_id_text": alice["key_id_text"],
        "nonce": vector["nonce_hex"],
        "encoded": vector["encoded"],
        "plaintext": encoded.ljust(vector["plaintext_length"], b"\0").hex(),
        "header": wire[:30],
        "sealed": unb64s(wire[2:])[21:].hex(),
        "wire": wire,
    }
    assert shown == expected
