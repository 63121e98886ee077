"""fwknop 1.x port-knock sequences: the encrypted format and shared (plain) sequences.

The Perl fwknop 1.x client sends an *encrypted sequence* (legacy-knock.md §1):
a 12..31-byte binary plaintext (allow IP, port, protocol, a one-byte checksum,
the user name) encrypted in OpenSSL's ``Salted__`` AES-256-CBC format with
an MD5 key derivation, one knock per ciphertext byte to ``offset + byte``.
A *shared sequence* is a plain list of ``proto/port`` steps.

Decisions that are not obvious from the code:

* Keys are padded with ``0`` to 16 characters and otherwise used whole, as
  1.x does (no 32-byte limit). :func:`build_knock_sequence` refuses keys shorter
  than 8 characters, as the 1.x client does; decoding does not, as the 1.x
  server did not.
* :func:`decode_knock_sequence` takes 32 or 48 knocks. Padding is removed only when
  it is valid (1.x's lenient rule); ``DecodedSequence.padded`` says whether it
  was, which is how a server tells a complete 32-knock sequence from the
  first 32 knocks of a 48-knock one (spec §9 item 1).
* The checksum covers bytes 0..6 only and the protocol byte must be 1, 6 or
  17: that is the whole integrity check of the format (about 1 in 22 000
  wrong-key sequences pass). Nothing here can make the format stronger;
  callers must treat a decoded sequence as low confidence.
* The replay digest is the SHA-256 of the first 32 ciphertext bytes
  (unpadded base64, as the SPA replay cache keys are), so a server can store
  both kinds in one cache: an SPA packet's wire text is never raw
  ``Salted__`` bytes.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ._b64 import b64s_encode
from ._errors import SpaError, UsageError
from ._types import DEFAULT_KNOCK_OFFSET, MAX_KNOCK_OFFSET, EncryptionMode

__all__ = [
    "DEFAULT_KNOCK_OFFSET",
    "KNOCK_PROTOCOLS",
    "MAX_KNOCK_OFFSET",
    "MAX_SEQUENCE_USER",
    "MIN_KNOCK_KEY",
    "DecodedSequence",
    "InvalidKnockSequence",
    "KnockKey",
    "KnockReject",
    "KnockRequest",
    "KnockStep",
    "build_knock_sequence",
    "build_knock_sequence_from_parts",
    "decode_knock_sequence",
    "knock_checksum",
    "legacy_access",
    "parse_shared_sequence",
]

MIN_KNOCK_KEY = 8  # the 1.x client refuses shorter keys
MAX_SEQUENCE_USER = 23  # the plaintext stops at 31 bytes
SEQUENCE_LENGTHS = (32, 48)
KNOCK_PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
_PROTO_NAMES = {v: k for k, v in KNOCK_PROTOCOLS.items()}
_KEY_WIDTH = 16


class KnockReject(enum.Enum):
    """Why a knock sequence could not be decoded."""

    BAD_LENGTH = "not 32 or 48 knocks"
    OUT_OF_RANGE = "a knock outside the 256 ports of the offset"
    NOT_SALTED = "does not start with Salted__"
    BAD_PROTOCOL = "bad protocol number"
    BAD_CHECKSUM = "invalid checksum"
    SHORT_PLAINTEXT = "plaintext shorter than 8 bytes"


class InvalidKnockSequence(SpaError):  # noqa: N818 - named like InvalidPacket
    """A knock sequence was refused; ``reason`` says why, ``detail`` adds context."""

    def __init__(self, reason: KnockReject, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value

    def __reduce__(self) -> tuple[type[InvalidKnockSequence], tuple[KnockReject, str]]:
        return (type(self), (self.reason, self.detail))


@dataclass(frozen=True, slots=True, repr=False)
class KnockKey:
    """A 1.x sequence key (``KEY``): any length, right-padded with ``0`` to 16 characters."""

    secret: bytes
    padded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes):
            raise TypeError("KnockKey secret must be bytes")
        if not self.secret:
            raise UsageError("a knock sequence key cannot be empty")
        object.__setattr__(self, "padded", self.secret.ljust(_KEY_WIDTH, b"0"))

    def __repr__(self) -> str:
        return f"KnockKey(<{len(self.secret)} bytes>)"

    @classmethod
    def from_passphrase(cls, text: str | bytes) -> KnockKey:
        """The key as typed or written after ``KEY:`` (UTF-8)."""
        if isinstance(text, str):
            return cls(text.encode("utf-8"))
        if isinstance(text, bytes):
            return cls(text)
        raise TypeError("a knock key is str or bytes")


def knock_checksum(head: bytes) -> int:
    """The 1.x checksum: the sum of plaintext bytes 0..6, modulo 256."""
    return sum(head[:7]) % 256


@dataclass(frozen=True, slots=True)
class KnockRequest:
    """The plaintext of an encrypted sequence: what to open, for whom, and who asks."""

    allow_ip: str  # dotted IPv4; 0.0.0.0 means "the address the knocks come from"
    proto: int  # 1 icmp, 6 tcp, 17 udp
    port: int  # 0 for icmp
    username: bytes = b""

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.allow_ip)
        except (ipaddress.AddressValueError, TypeError):
            raise UsageError(f"allow IP {self.allow_ip!r} is not an IPv4 address") from None
        if self.proto not in _PROTO_NAMES:
            raise UsageError(f"protocol {self.proto} is not icmp (1), tcp (6) or udp (17)")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"port {self.port} is out of range")
        if self.proto == KNOCK_PROTOCOLS["icmp"] and self.port:
            raise UsageError("an icmp request carries port 0")
        if not isinstance(self.username, bytes):
            raise TypeError("username must be bytes")

    @property
    def proto_name(self) -> str:
        """``tcp``, ``udp`` or ``icmp``."""
        return _PROTO_NAMES[self.proto]

    @property
    def access(self) -> str:
        """The request as ``proto/port`` (``icmp/0`` for icmp)."""
        return f"{self.proto_name}/{self.port}"

    @property
    def source_address(self) -> bool:
        """Whether the client asked for the knock source (allow IP 0.0.0.0, client ``-s``)."""
        return self.allow_ip == "0.0.0.0"  # noqa: S104 - the format's "use the source"

    def plaintext(self) -> bytes:
        """The bytes the client encrypts; the user name is cut to 23 bytes as 1.x does."""
        head = ipaddress.IPv4Address(self.allow_ip).packed + bytes(
            (self.port >> 8, self.port & 0xFF, self.proto)
        )
        return head + bytes((knock_checksum(head),)) + self.username[:MAX_SEQUENCE_USER]


@dataclass(frozen=True, slots=True)
class DecodedSequence:
    """A decrypted sequence: the request, the ciphertext and how it ended."""

    request: KnockRequest
    ciphertext: bytes
    padded: bool  # valid PKCS#7 padding: the sequence is complete at this length

    @property
    def knocks(self) -> int:
        """How many knocks carried it (32 or 48)."""
        return len(self.ciphertext)

    @property
    def replay_digest(self) -> str:
        """The replay-cache key: SHA-256 of the first 32 knocks' bytes (unpadded base64).

        The salt and the first block are what every reading of one sequence
        shares: a 48-knock sequence replayed as its first 32 knocks (which a
        server may accept with the 8-character name) has the same key.
        """
        return b64s_encode(hashlib.sha256(self.ciphertext[:32]).digest())


def _check_offset(offset: int) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError("offset must be an int")
    if not 1 <= offset <= MAX_KNOCK_OFFSET:
        raise UsageError(f"port offset {offset} is outside 1..{MAX_KNOCK_OFFSET}")
    return offset


def _encrypt(plain: bytes, key: KnockKey, salt: bytes) -> bytes:
    # the AES code (and cryptography) loads with the first encrypted sequence: a client
    # that only reads shared sequences (the TUI's profile list) never pays for it
    from ._primitives import SALTED, aes_encrypt, derive_key_iv, pkcs7_pad  # noqa: PLC0415

    aes_key, iv = derive_key_iv(key.padded, salt)
    return SALTED + salt + aes_encrypt(EncryptionMode.CBC, aes_key, iv, pkcs7_pad(plain))


def build_knock_sequence_from_parts(
    request: KnockRequest, key: KnockKey, salt: bytes, *, offset: int = DEFAULT_KNOCK_OFFSET
) -> tuple[int, ...]:
    """The destination ports of the knocks, with a given salt (vectors reproduce exactly)."""
    if not isinstance(request, KnockRequest):
        raise TypeError("request must be a KnockRequest")
    if not isinstance(key, KnockKey):
        raise TypeError("key must be a KnockKey")
    if not isinstance(salt, bytes) or len(salt) != 8:
        raise UsageError("the salt is 8 bytes")
    if len(key.secret) < MIN_KNOCK_KEY:
        raise UsageError(f"a knock key needs at least {MIN_KNOCK_KEY} characters (as in 1.x)")
    base = _check_offset(offset)
    return tuple(base + b for b in _encrypt(request.plaintext(), key, salt))


def build_knock_sequence(
    request: KnockRequest,
    key: KnockKey,
    *,
    offset: int = DEFAULT_KNOCK_OFFSET,
    salt: bytes | None = None,
) -> tuple[int, ...]:
    """The destination ports of an encrypted sequence (32 or 48 knocks), with a random salt."""
    return build_knock_sequence_from_parts(
        request, key, os.urandom(8) if salt is None else salt, offset=offset
    )


def decode_knock_sequence(
    ports: Sequence[int], key: KnockKey, *, offset: int = DEFAULT_KNOCK_OFFSET
) -> DecodedSequence:
    """Decrypt 32 or 48 knocks and check the request; ``InvalidKnockSequence`` if bad."""
    if not isinstance(key, KnockKey):
        raise TypeError("key must be a KnockKey")
    base = _check_offset(offset)
    if len(ports) not in SEQUENCE_LENGTHS:
        raise InvalidKnockSequence(KnockReject.BAD_LENGTH, f"{len(ports)} knocks")
    raw = [p - base for p in ports]
    if any(not 0 <= b <= 255 for b in raw):
        raise InvalidKnockSequence(KnockReject.OUT_OF_RANGE, f"offset {base}")
    cipher = bytes(raw)
    from ._primitives import SALTED, aes_decrypt, derive_key_iv, lenient_unpad  # noqa: PLC0415

    if cipher[:8] != SALTED:
        raise InvalidKnockSequence(KnockReject.NOT_SALTED)
    aes_key, iv = derive_key_iv(key.padded, cipher[8:16])
    block = aes_decrypt(EncryptionMode.CBC, aes_key, iv, cipher[16:])
    plain = lenient_unpad(block)
    padded = len(plain) < len(block)
    if len(plain) < 8:
        raise InvalidKnockSequence(KnockReject.SHORT_PLAINTEXT, f"{len(plain)} bytes")
    proto = plain[6]
    if proto not in _PROTO_NAMES:
        raise InvalidKnockSequence(KnockReject.BAD_PROTOCOL, str(proto))
    if knock_checksum(plain) != plain[7]:
        raise InvalidKnockSequence(KnockReject.BAD_CHECKSUM)
    port = plain[4] << 8 | plain[5]
    if proto == KNOCK_PROTOCOLS["icmp"]:
        port = 0
    user = plain[8:].split(b"\0", 1)[0]
    allow = str(ipaddress.IPv4Address(plain[:4]))
    return DecodedSequence(KnockRequest(allow, proto, port, user), cipher, padded)


_DIGITS = re.compile(r"\d+")


def legacy_access(text: str) -> tuple[int, int]:
    """(proto, port) from a 1.x client ``-A`` string, with 1.x's loose rule (spec §1.1).

    tcp if the text contains ``tcp`` anywhere, else udp, else icmp; the port is
    the first run of digits (icmp: 0). ``-A udp/53,tcp/22`` asks for tcp/53.
    """
    lower = text.lower()
    for name in ("tcp", "udp", "icmp"):
        if name in lower:
            proto = KNOCK_PROTOCOLS[name]
            break
    else:
        raise UsageError(f"access {text!r} names no tcp, udp or icmp")
    if proto == KNOCK_PROTOCOLS["icmp"]:
        return proto, 0
    digits = _DIGITS.search(lower)
    port = int(digits.group()) if digits else 0
    if not 1 <= port <= 65535:
        raise UsageError(f"access {text!r} gives no port in 1..65535")
    return proto, port


@dataclass(frozen=True, slots=True)
class KnockStep:
    """One step of a shared sequence: tcp/N, udp/N, or an icmp echo (``port`` None)."""

    proto: int
    port: int | None = None

    def __post_init__(self) -> None:
        if self.proto == KNOCK_PROTOCOLS["icmp"]:
            if self.port is not None:
                raise UsageError("an icmp step has no port")
        elif self.proto in (KNOCK_PROTOCOLS["tcp"], KNOCK_PROTOCOLS["udp"]):
            if self.port is None or not 1 <= self.port <= 65535:
                raise UsageError(f"{_PROTO_NAMES[self.proto]} step needs a port in 1..65535")
        else:
            raise UsageError(f"protocol {self.proto} cannot be a knock")

    @property
    def proto_name(self) -> str:
        """``tcp``, ``udp`` or ``icmp``."""
        return _PROTO_NAMES[self.proto]

    def __str__(self) -> str:
        return "icmp" if self.port is None else f"{self.proto_name}/{self.port}"


_STEP = re.compile(r"\s*(tcp|udp)\s*/\s*(\d{1,5})\s*|\s*(icmp)\s*", re.IGNORECASE)


def parse_shared_sequence(text: str | Iterable[str]) -> tuple[KnockStep, ...]:
    """``tcp/5501, udp/5502, icmp`` (or a list of items) as steps; ``UsageError`` if bad.

    Stricter than 1.x, which dropped unrecognised items silently and so ran
    a different sequence than the one written: every item must be one step.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    steps: list[KnockStep] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError("sequence items are str")
        m = _STEP.fullmatch(item)
        if m is None:
            raise UsageError(f"{item.strip()!r} is not tcp/PORT, udp/PORT or icmp")
        if m.group(3):
            steps.append(KnockStep(KNOCK_PROTOCOLS["icmp"]))
        else:
            steps.append(KnockStep(KNOCK_PROTOCOLS[m.group(1).lower()], int(m.group(2))))
    if not steps:
        raise UsageError("a shared sequence needs at least one step")
    return tuple(steps)
