"""Key values and key generation.

Keys are frozen values whose ``repr`` never shows the material, so a key
that ends up in a log line, a traceback or a test failure leaks nothing.
The protocol has no notion of "passphrase" versus "base64" keys: both are
bytes to the KDF and the HMAC. ``from_passphrase`` / ``from_base64`` only
say how the bytes were written down.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ._b64 import b64_decode_padded
from ._errors import UsageError
from ._primitives import Keyed, keyed, legacy_key
from ._types import EncryptionMode, EncryptionType, HmacType

__all__ = ["GeneratedKeys", "HmacKey", "RijndaelKey", "decode_key_base64", "generate_keys"]

MAX_RIJNDAEL_KEY = 32
MAX_HMAC_KEY = 128  # what the fwknop client makes and takes (it cuts a longer passphrase)
# what fwknopd 2.6.10 verifies with: a server's HMAC_KEY may be this long (a key of the
# real client's, 128 bytes at most, always fits; a longer one needs a client of its own)
MAX_SERVER_HMAC_KEY = 136


def decode_key_base64(text: str, what: str) -> bytes:
    """The bytes of a key written in base64 (``what`` names it in the error)."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str")
    try:
        return b64_decode_padded(text)
    except ValueError:
        raise UsageError(f"{what} is not valid base64") from None


def _check_hmac_length(secret: bytes, limit: int) -> None:
    if not 1 <= len(secret) <= limit:
        raise UsageError(f"HMAC key must be 1..{limit} bytes, not {len(secret)}")


def _passphrase_bytes(text: str | bytes, what: str) -> bytes:
    if isinstance(text, bytes):
        return text
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str or bytes")
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True, repr=False)
class RijndaelKey:
    """A Rijndael (AES) key of 1..32 bytes and the cipher mode it is used in."""

    secret: bytes
    mode: EncryptionMode = EncryptionMode.CBC
    # what the KDF is fed: the secret, or its legacy-IV form (padded/truncated to 16)
    kdf_secret: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes):
            raise TypeError("RijndaelKey secret must be bytes")
        if not isinstance(self.mode, EncryptionMode):
            raise TypeError("mode must be an EncryptionMode")
        if self.mode is EncryptionMode.ASYMMETRIC:
            raise UsageError("Asymmetric mode means GnuPG; use a GnuPG key instead")
        if not 1 <= len(self.secret) <= MAX_RIJNDAEL_KEY:
            raise UsageError(
                f"Rijndael key must be 1..{MAX_RIJNDAEL_KEY} bytes, not {len(self.secret)}"
            )
        legacy = self.mode is EncryptionMode.LEGACY
        object.__setattr__(self, "kdf_secret", legacy_key(self.secret) if legacy else self.secret)

    def __repr__(self) -> str:
        return f"RijndaelKey(<{len(self.secret)} bytes>, mode={self.mode.label})"

    @classmethod
    def from_passphrase(
        cls, text: str | bytes, mode: EncryptionMode = EncryptionMode.CBC
    ) -> RijndaelKey:
        """A key written as text (``KEY`` / ``--key-rijndael``)."""
        return cls(_passphrase_bytes(text, "Rijndael passphrase"), mode)

    @classmethod
    def from_base64(cls, text: str, mode: EncryptionMode = EncryptionMode.CBC) -> RijndaelKey:
        """A key written as base64 (``KEY_BASE64`` / ``--key-base64-rijndael``)."""
        return cls(decode_key_base64(text, "KEY_BASE64"), mode)

    def to_base64(self) -> str:
        """The padded base64 form, as ``KEY_BASE64`` lines hold it."""
        return base64.b64encode(self.secret).decode("ascii")


@dataclass(frozen=True, slots=True, repr=False)
class HmacKey:
    """An HMAC key and the HMAC algorithm it is used with.

    Made from text (``from_passphrase``, ``from_base64``) a key is 1..128
    bytes, as the fwknop client takes it; made from its bytes it may be up
    to 136 bytes long, the longest key fwknopd 2.6.10 verifies with.
    """

    secret: bytes
    type: HmacType = HmacType.SHA256
    # precomputed for the packet path: the MAC's base64 length, and keyed HMAC states to
    # copy (the key pads hashed once), bare and with each wire prefix already fed in
    mac_length: int = field(init=False, repr=False, compare=False)
    _keyed: Keyed = field(init=False, repr=False, compare=False)
    _prefixed: dict[EncryptionType, Keyed] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes):
            raise TypeError("HmacKey secret must be bytes")
        if not isinstance(self.type, HmacType):
            raise TypeError("type must be an HmacType")
        _check_hmac_length(self.secret, MAX_SERVER_HMAC_KEY)
        object.__setattr__(self, "mac_length", self.type.b64_length)
        state = keyed(self.secret, self.type)
        object.__setattr__(self, "_keyed", state)
        prefixed = {}
        for encryption in EncryptionType:
            prefixed[encryption] = state.copy()
            prefixed[encryption].update(encryption.wire_prefix)
        object.__setattr__(self, "_prefixed", prefixed)

    def mac(self, *parts: bytes) -> bytes:
        """Unpadded base64 HMAC of ``parts`` (concatenated), as ASCII bytes."""
        h = self._keyed.copy()
        for part in parts:  # fed one by one: no need to join them first
            h.update(part)
        return binascii.b2a_base64(h.finalize(), newline=False).rstrip(b"=")

    def prefixed(self, encryption: EncryptionType) -> Keyed:
        """The keyed state with ``encryption``'s wire prefix fed in (copy it; never feed it)."""
        return self._prefixed[encryption]

    def __repr__(self) -> str:
        return f"HmacKey(<{len(self.secret)} bytes>, type={self.type.label})"

    @classmethod
    def from_passphrase(cls, text: str | bytes, type: HmacType = HmacType.SHA256) -> HmacKey:  # noqa: A002
        """A key written as text (``HMAC_KEY`` / ``--key-hmac``): 1..128 bytes, as a client's."""
        secret = _passphrase_bytes(text, "HMAC passphrase")
        _check_hmac_length(secret, MAX_HMAC_KEY)
        return cls(secret, type)

    @classmethod
    def from_base64(cls, text: str, type: HmacType = HmacType.SHA256) -> HmacKey:  # noqa: A002
        """A key written as base64 (``HMAC_KEY_BASE64`` / ``--key-base64-hmac``): 1..128 bytes."""
        secret = decode_key_base64(text, "HMAC_KEY_BASE64")
        _check_hmac_length(secret, MAX_HMAC_KEY)
        return cls(secret, type)

    def to_base64(self) -> str:
        """The padded base64 form, as ``HMAC_KEY_BASE64`` lines hold it."""
        return base64.b64encode(self.secret).decode("ascii")


@dataclass(frozen=True, slots=True, repr=False)
class GeneratedKeys:
    """A fresh Rijndael key and HMAC key, as ``--key-gen`` prints them."""

    rijndael: RijndaelKey
    hmac: HmacKey

    def __repr__(self) -> str:
        return f"GeneratedKeys({self.rijndael!r}, {self.hmac!r})"

    def as_text(self) -> str:
        """``KEY_BASE64: ...`` and ``HMAC_KEY_BASE64: ...`` lines."""
        return (
            f"KEY_BASE64: {self.rijndael.to_base64()}\nHMAC_KEY_BASE64: {self.hmac.to_base64()}\n"
        )


def generate_keys(
    hmac_type: HmacType = HmacType.SHA256,
    *,
    key_len: int = MAX_RIJNDAEL_KEY,
    hmac_key_len: int | None = None,
    mode: EncryptionMode = EncryptionMode.CBC,
    rng: Callable[[int], bytes] | None = None,
) -> GeneratedKeys:
    """New random keys; the HMAC key length defaults to what suits ``hmac_type``."""
    if not 1 <= key_len <= MAX_RIJNDAEL_KEY:
        raise UsageError(f"key length must be 1..{MAX_RIJNDAEL_KEY}")
    hlen = hmac_type.default_key_length if hmac_key_len is None else hmac_key_len
    if not 1 <= hlen <= MAX_HMAC_KEY:
        raise UsageError(f"HMAC key length must be 1..{MAX_HMAC_KEY}")
    rand = rng or os.urandom
    return GeneratedKeys(RijndaelKey(rand(key_len), mode), HmacKey(rand(hlen), hmac_type))
