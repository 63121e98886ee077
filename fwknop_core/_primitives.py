"""Hazardous material: the OpenSSL-compatible KDF, AES modes, digests, keyed HMAC states.

Only ``_packet``, ``_keys`` and ``_knockseq`` import this module. Everything here is a
plain function over bytes; nothing validates protocol rules.

HMAC states are ``cryptography``'s: copying one and finalizing the copy are
one C call each, where ``hmac.HMAC`` (and ``_hashlib`` under it) copies the
state once more to make a digest, and a server under a flood pays that for
every packet and stanza (``_hmac.py``).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from cryptography.hazmat.decrepit.ciphers import modes as decrepit_modes
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._b64 import b64s_encode
from ._types import DigestType, EncryptionMode, HmacType

__all__ = [
    "SALTED",
    "Keyed",
    "aes_decrypt",
    "aes_encrypt",
    "derive_key_iv",
    "digest_b64",
    "keyed",
    "legacy_key",
    "lenient_unpad",
    "pkcs7_pad",
]

SALTED = b"Salted__"
_md5 = hashlib.md5


def derive_key_iv(password: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL ``EVP_BytesToKey`` with MD5 and one round: 32-byte key, 16-byte IV."""
    tail = password + salt
    d1 = _md5(tail).digest()
    d2 = _md5(d1 + tail).digest()
    d3 = _md5(d2 + tail).digest()
    return d1 + d2, d3


def legacy_key(password: bytes) -> bytes:
    """Pre-2.5 key handling: right-pad with ASCII ``0`` to 16 bytes, or truncate to 16."""
    return password[:16].ljust(16, b"0")


_PlainMode = modes.ModeWithInitializationVector | modes.ModeWithNonce | modes.ECB


def _mode(mode: EncryptionMode, iv: bytes) -> _PlainMode:
    if mode is EncryptionMode.CBC or mode is EncryptionMode.LEGACY:
        return modes.CBC(iv)
    if mode is EncryptionMode.CTR:
        return modes.CTR(iv)
    if mode is EncryptionMode.CFB:
        return decrepit_modes.CFB(iv)
    if mode is EncryptionMode.OFB:
        return decrepit_modes.OFB(iv)
    if mode is EncryptionMode.ECB:
        return modes.ECB()  # noqa: S305 - the protocol offers ECB; the choice is the user's
    raise ValueError(f"{mode.label} is not a Rijndael mode")


def aes_encrypt(mode: EncryptionMode, key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256 in ``mode``; ``data`` must already be padded to the block size."""
    enc = Cipher(algorithms.AES(key), _mode(mode, iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_decrypt(mode: EncryptionMode, key: bytes, iv: bytes, data: bytes) -> bytes:
    """Inverse of :func:`aes_encrypt`; ``data`` is a whole number of blocks."""
    dec = Cipher(algorithms.AES(key), _mode(mode, iv)).decryptor()
    return dec.update(data) + dec.finalize()


def pkcs7_pad(data: bytes) -> bytes:
    """PKCS#7 to 16 bytes (a full block when already aligned), used in every mode."""
    n = 16 - (len(data) % 16)
    return data + bytes((n,)) * n


def lenient_unpad(data: bytes) -> bytes:
    """libfko's padding removal: strip only when the last ``v`` bytes all equal ``v <= 16``."""
    if not data:
        return data
    v = data[-1]
    if 0 < v <= 16 and len(data) >= v and data[-v:] == bytes((v,)) * v:
        return data[:-v]
    return data


def digest_b64(kind: DigestType, data: bytes) -> str:
    """Unpadded base64 of ``kind``'s hash of ``data`` (the inner digest)."""
    return b64s_encode(hashlib.new(kind.hashlib_name, data).digest())


_HMAC_HASHES: dict[HmacType, type[hashes.HashAlgorithm]] = {
    HmacType.MD5: hashes.MD5, HmacType.SHA1: hashes.SHA1, HmacType.SHA256: hashes.SHA256,
    HmacType.SHA384: hashes.SHA384, HmacType.SHA512: hashes.SHA512,
    HmacType.SHA3_256: hashes.SHA3_256, HmacType.SHA3_512: hashes.SHA3_512,
}  # fmt: skip


class Keyed(Protocol):
    """A keyed HMAC state: copied for each message, never fed one itself."""

    def copy(self) -> Keyed: ...
    def update(self, data: bytes, /) -> None: ...
    def finalize(self) -> bytes: ...


def keyed(secret: bytes, hmac_type: HmacType) -> Keyed:
    """A keyed HMAC state for ``secret`` (the key schedule done once)."""
    return crypto_hmac.HMAC(secret, _HMAC_HASHES[hmac_type]())
