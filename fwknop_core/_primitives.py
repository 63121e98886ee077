"""Hazardous material: the OpenSSL-compatible KDF, AES modes, digests, HMAC.

Only ``_packet``, ``_keys`` and ``_knockseq`` import this module. Everything here is a
plain function over bytes; nothing validates protocol rules.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.decrepit.ciphers import modes as decrepit_modes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._b64 import b64s_encode
from ._types import DigestType, EncryptionMode

__all__ = [
    "SALTED",
    "aes_decrypt",
    "aes_encrypt",
    "derive_key_iv",
    "digest_b64",
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
