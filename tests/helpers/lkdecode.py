"""Independent decoder for fwknop 1.x encrypted sequences (vectors/legacy/tools/lkdecode.py).

Written from legacy-knock.md alone, with ``cryptography`` directly and no
code of ours, so our core's decoder and builder are checked against a second
reading of the spec.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def derive(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """EVP_BytesToKey(MD5): 32-byte key, 16-byte IV."""
    d, out = b"", b""
    while len(out) < 48:
        d = hashlib.md5(d + passphrase + salt).digest()  # noqa: S324 - the format's KDF
        out += d
    return out[:32], out[32:48]


def pad_key(key: str) -> bytes:
    """The 1.x key padding: right-pad with '0' to 16 characters."""
    k = key.encode()
    if len(k) < 16:
        k = k + b"0" * (16 - len(k))
    return k


def decode(ports: Sequence[int], key: str, offset: int = 61000, nports: int = 32) -> dict[str, Any]:
    """Decode the first ``nports`` knocks."""
    ct = bytes(p - offset for p in ports[:nports])
    assert ct[:8] == b"Salted__", ct[:8]
    k, iv = derive(pad_key(key), ct[8:16])
    d = Cipher(algorithms.AES(k), modes.CBC(iv)).decryptor()
    pt = d.update(ct[16:]) + d.finalize()
    v = pt[-1]
    if 1 <= v <= 16 and pt[-v:] == bytes([v]) * v:
        pt = pt[:-v]
    return {
        "allow_ip": ".".join(str(b) for b in pt[:4]),
        "port": pt[4] << 8 | pt[5],
        "proto": pt[6],
        "checksum_ok": sum(pt[:7]) % 256 == pt[7],
        "user": pt[8:].split(b"\0")[0].decode("latin-1"),
        "plaintext": list(pt),
    }
