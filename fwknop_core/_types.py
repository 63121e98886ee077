"""Enumerations of the SPA protocol, numbered exactly as libfko numbers them.

The digest and HMAC enums share one table of hash properties because the
protocol uses the same seven algorithms (and the same codes) for both.
"""

from __future__ import annotations

import enum

from ._errors import UsageError

# fwknop 1.x knock sequences' port offset (here, not in _knockseq: profiles need the numbers
# without loading the sequence machinery)
DEFAULT_KNOCK_OFFSET = 61000
MAX_KNOCK_OFFSET = 65280  # offset + 255 must still be a port

__all__ = [
    "DEFAULT_KNOCK_OFFSET",
    "MAX_KNOCK_OFFSET",
    "DigestType",
    "EncryptionMode",
    "EncryptionType",
    "HmacType",
    "MessageType",
]

# code -> (name as fwknop spells it, hashlib name, digest bytes, block bytes)
_HASHES: dict[int, tuple[str, str, int, int]] = {
    1: ("md5", "md5", 16, 64),
    2: ("sha1", "sha1", 20, 64),
    3: ("sha256", "sha256", 32, 64),
    4: ("sha384", "sha384", 48, 128),
    5: ("sha512", "sha512", 64, 128),
    6: ("sha3_256", "sha3_256", 32, 136),
    7: ("sha3_512", "sha3_512", 64, 72),
}


def _b64s_len(nbytes: int) -> int:
    return (nbytes * 8 + 5) // 6


class _HashInfo:
    """Properties shared by ``DigestType`` and ``HmacType``."""

    value: int

    @property
    def fwknop_name(self) -> str:
        """Lower-case name as in ``--hmac-digest-type`` / access.conf."""
        return _HASHES[self.value][0]

    @property
    def label(self) -> str:
        """Upper-case name as fwknop prints it (``SHA3_256``)."""
        return _HASHES[self.value][0].upper()

    @property
    def hashlib_name(self) -> str:
        """Name understood by :mod:`hashlib` and :func:`hmac.digest`."""
        return _HASHES[self.value][1]

    @property
    def digest_size(self) -> int:
        """Raw digest length in bytes."""
        return _HASHES[self.value][2]

    @property
    def block_size(self) -> int:
        """Hash block size in bytes (what HMAC pads keys to)."""
        return _HASHES[self.value][3]

    @property
    def b64_length(self) -> int:
        """Length of the unpadded base64 form of a digest."""
        return _b64s_len(_HASHES[self.value][2])


def _lookup_by_name(enum_cls: type[enum.IntEnum], text: str, what: str) -> int:
    wanted = text.strip().lower().replace("-", "_")
    for code, (name, *_rest) in _HASHES.items():
        if wanted in (name, name.replace("_", "")):
            return code
    choices = ", ".join(name for name, *_r in _HASHES.values())
    raise UsageError(f"unknown {what} {text!r} (choose from {choices})")


class DigestType(_HashInfo, enum.IntEnum):
    """Inner digest algorithm (``-m`` / ``DIGEST_TYPE``)."""

    MD5 = 1
    SHA1 = 2
    SHA256 = 3
    SHA384 = 4
    SHA512 = 5
    SHA3_256 = 6
    SHA3_512 = 7

    @classmethod
    def from_name(cls, text: str) -> DigestType:
        """Parse a name such as ``sha256`` or ``SHA3_512`` (case-insensitive)."""
        return cls(_lookup_by_name(cls, text, "digest type"))


class HmacType(_HashInfo, enum.IntEnum):
    """HMAC algorithm (``--hmac-digest-type`` / ``HMAC_DIGEST_TYPE``)."""

    MD5 = 1
    SHA1 = 2
    SHA256 = 3
    SHA384 = 4
    SHA512 = 5
    SHA3_256 = 6
    SHA3_512 = 7

    @classmethod
    def from_name(cls, text: str) -> HmacType:
        """Parse a name such as ``sha256`` or ``SHA3_512`` (case-insensitive)."""
        return cls(_lookup_by_name(cls, text, "HMAC type"))

    @property
    def default_key_length(self) -> int:
        """HMAC key length that key generation uses by default.

        One hash block, as the C client does for MD5..SHA512, except that
        SHA3-256's 136-byte block is capped at 128 bytes: the C client and
        fwknopd refuse longer keys. (The C client has no default for SHA3 at
        all; we do.)
        """
        if self is HmacType.MD5:
            return 16
        if self is HmacType.SHA1:
            return 20
        return min(self.block_size, 128)


class MessageType(enum.IntEnum):
    """SPA message type code (field 5)."""

    COMMAND = 0
    ACCESS = 1
    NAT_ACCESS = 2
    CLIENT_TIMEOUT_ACCESS = 3
    CLIENT_TIMEOUT_NAT_ACCESS = 4
    LOCAL_NAT_ACCESS = 5
    CLIENT_TIMEOUT_LOCAL_NAT_ACCESS = 6

    @property
    def has_nat(self) -> bool:
        """True for the four types that carry a NAT field."""
        return self in _NAT_TYPES

    @property
    def has_timeout(self) -> bool:
        """True for the three client-timeout types."""
        return self in _TIMEOUT_TYPES

    @property
    def is_local_nat(self) -> bool:
        """True for the two local-NAT types."""
        return self in (MessageType.LOCAL_NAT_ACCESS, MessageType.CLIENT_TIMEOUT_LOCAL_NAT_ACCESS)

    @property
    def label(self) -> str:
        """Name as fwknop prints it (``Access msg``)."""
        return _LABELS[self]

    def with_timeout(self, timeout: bool) -> MessageType:
        """The client-timeout variant of this type (or the plain one)."""
        if self is MessageType.COMMAND:
            return self
        return _PROMOTE[self] if timeout else _DEMOTE.get(self, self)


_NAT_TYPES = frozenset({2, 4, 5, 6})
_TIMEOUT_TYPES = frozenset({3, 4, 6})
_LABELS = {
    MessageType.COMMAND: "Command msg",
    MessageType.ACCESS: "Access msg",
    MessageType.NAT_ACCESS: "NAT access msg",
    MessageType.CLIENT_TIMEOUT_ACCESS: "Client timeout access msg",
    MessageType.CLIENT_TIMEOUT_NAT_ACCESS: "Client timeout NAT access msg",
    MessageType.LOCAL_NAT_ACCESS: "Local NAT access msg",
    MessageType.CLIENT_TIMEOUT_LOCAL_NAT_ACCESS: "Client timeout local NAT access msg",
}
_PROMOTE = {
    MessageType.ACCESS: MessageType.CLIENT_TIMEOUT_ACCESS,
    MessageType.NAT_ACCESS: MessageType.CLIENT_TIMEOUT_NAT_ACCESS,
    MessageType.LOCAL_NAT_ACCESS: MessageType.CLIENT_TIMEOUT_LOCAL_NAT_ACCESS,
    MessageType.CLIENT_TIMEOUT_ACCESS: MessageType.CLIENT_TIMEOUT_ACCESS,
    MessageType.CLIENT_TIMEOUT_NAT_ACCESS: MessageType.CLIENT_TIMEOUT_NAT_ACCESS,
    MessageType.CLIENT_TIMEOUT_LOCAL_NAT_ACCESS: MessageType.CLIENT_TIMEOUT_LOCAL_NAT_ACCESS,
}
_DEMOTE = {v: k for k, v in _PROMOTE.items() if k is not v}


class EncryptionType(enum.IntEnum):
    """How the plaintext is encrypted (never on the wire; inferred from length)."""

    RIJNDAEL = 1
    GPG = 2

    @property
    def label(self) -> str:
        """Name as fwknop prints it."""
        return "Rijndael" if self is EncryptionType.RIJNDAEL else "GPG"

    @property
    def wire_prefix(self) -> bytes:
        """What the client strips from the front of the base64 (and the HMAC covers again)."""
        return b"U2FsdGVkX1" if self is EncryptionType.RIJNDAEL else b"hQ"


class EncryptionMode(enum.IntEnum):
    """Cipher mode (``-M`` / ``ENCRYPTION_MODE``); must match on both ends."""

    ECB = 1
    CBC = 2
    CFB = 3
    OFB = 5
    CTR = 6
    ASYMMETRIC = 7
    LEGACY = 8

    @property
    def label(self) -> str:
        """Name as fwknop prints it (``CBC``, ``Asymmetric``, ``legacy``)."""
        if self is EncryptionMode.ASYMMETRIC:
            return "Asymmetric"
        if self is EncryptionMode.LEGACY:
            return "legacy"
        return self.name

    @classmethod
    def from_name(cls, text: str) -> EncryptionMode:
        """Parse ``cbc``, ``CTR``, ``legacy``, ``Asymmetric`` ... (case-insensitive)."""
        wanted = text.strip().upper()
        for mode in cls:
            if mode.name == wanted:
                return mode
        choices = "cbc, ecb, cfb, ofb, ctr, legacy, asymmetric"
        raise UsageError(f"unknown encryption mode {text!r} (choose from {choices})")
