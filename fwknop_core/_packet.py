"""Build and open SPA packets: the only place encryption, HMAC and encoding meet.

Opening follows fwknopd's order (spa-protocol.md §6.1, §8.2): cheap checks on
length, characters and prefixes first; then the HMAC, in constant time,
before anything is decrypted; then decryption, the plaintext checks, field
parsing and the inner digest. Every failure on the way is an
``InvalidPacket`` with its ``RejectReason``; nothing else escapes.

Then one rule of ours: a packet opens only as the very text its sender's
encoder wrote (``NOT_CANONICAL`` otherwise): no ``=``, no dangling
character, no unused bit set, the ``Salted__`` header intact, the PKCS#7
padding there. fwknopd takes all of these as new packets (its replay digest
is over the text), so without an HMAC one captured packet opened again and
again. For Rijndael these checks come after fwknopd's own, so that what
fwknopd refuses is refused for its reason; for GnuPG before gpg runs. A
GnuPG packet can still be re-framed (OpenPGP lengths, marker packets) into
other canonical text that gpg opens: ``OpenedPacket.replay_digests`` also
names the packet by its message, which no such change alters.

``build_packet_from_parts`` takes the salt, so opening a packet made by the
real client and building it again from what came out reproduces it byte for
byte. Rijndael packets are kept within the sizes fwknopd accepts (140..399
characters); the C client does not check this and can send packets the C
server silently ignores (a short command message with an MD5 digest and no
HMAC comes out at 118 characters). ``open_packet`` refuses such packets as
fwknopd does, unless the caller lowers ``min_length`` to inspect one.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._b64 import ALPHABET, b64s_decode, b64s_decode_strict, b64s_encode, noncanonical
from ._errors import InvalidPacket, RejectReason, UsageError
from ._hmac import MIN_ENCODED, HmacVerifier, MacMatch
from ._keys import HmacKey, RijndaelKey
from ._message import SpaMessage
from ._primitives import (
    SALTED,
    aes_decrypt,
    aes_encrypt,
    derive_key_iv,
    digest_b64,
    lenient_unpad,
    pkcs7_pad,
)
from ._types import DigestType, EncryptionMode, EncryptionType, HmacType

if TYPE_CHECKING:  # the GnuPG adapter loads only when a GnuPG key is used (a client's cold start)
    from .gpg import GpgDecryption, GpgEncryption, GpgSignature

    Key = RijndaelKey | GpgEncryption
    OpenKey = RijndaelKey | GpgDecryption

__all__ = [
    "GPG_PREFIX",
    "MAX_PACKET",
    "MIN_ENCODED",
    "MIN_GPG_PACKET",
    "MIN_PACKET",
    "RIJNDAEL_PREFIX",
    "OpenedPacket",
    "as_wire",
    "build_packet",
    "build_packet_from_parts",
    "check_age",
    "classify",
    "hmac_matches",
    "open_packet",
    "replay_digest",
    "size_problem",
]

RIJNDAEL_PREFIX = EncryptionType.RIJNDAEL.wire_prefix
GPG_PREFIX = EncryptionType.GPG.wire_prefix
MIN_PACKET = 140  # fwknopd silently ignores shorter payloads
MAX_PACKET = 1500  # libfko refuses strings of 1500 characters or more
MIN_GPG_PACKET = 400  # the length rule telling GnuPG from Rijndael
_WIRE_CHARS = ALPHABET + b"="
_PRINTABLE = bytes(range(0x20, 0x7F))
_DIGITS = b"0123456789"
# b64s length of the inner digest -> candidate digest types, in libfko's order
_DIGEST_BY_LEN: dict[int, tuple[DigestType, ...]] = {}
for _d in DigestType:
    _DIGEST_BY_LEN.setdefault(_d.b64_length, ())
    _DIGEST_BY_LEN[_d.b64_length] += (_d,)


@dataclass(frozen=True, slots=True)
class OpenedPacket:
    """What a valid packet carried, and how it was protected (``wire``: the text opened)."""

    message: SpaMessage
    encoded: str
    digest: str
    digest_type: DigestType
    encryption_type: EncryptionType
    encryption_mode: EncryptionMode
    wire: str
    hmac: str | None = None
    hmac_type: HmacType | None = None
    salt: bytes | None = None
    gpg_signature: GpgSignature | None = None

    @property
    def replay_digests(self) -> tuple[str, str]:
        """The names a replay cache must know this packet by: fwknopd's, and its message's.

        The first is fwknopd's replay digest, over the wire text (canonical:
        ``open_packet`` takes no other), as fwknopd's ``digest.cache`` holds
        it. The second is over the decrypted message, which stays the same
        however the packet is re-encoded, re-padded or (GnuPG) re-framed.
        """
        return replay_digest(self.wire), replay_digest(f"{self.encoded}:{self.digest}")


def replay_digest(data: str | bytes) -> str:
    """fwknopd's replay-cache key: unpadded base64 SHA-256 of the wire data as received."""
    raw = data.encode("ascii", "surrogateescape") if isinstance(data, str) else data
    return digest_b64(DigestType.SHA256, raw)


def classify(data: str | bytes) -> EncryptionType:
    """How fwknopd classifies a wire packet: 400 characters or more is GnuPG."""
    return EncryptionType.GPG if len(data) >= MIN_GPG_PACKET else EncryptionType.RIJNDAEL


def check_age(message: SpaMessage, *, now: float | None = None, max_age: int = 120) -> None:
    """Raise ``InvalidPacket(STALE)`` if the timestamp is more than ``max_age`` seconds off."""
    current = int(time.time() if now is None else now)
    delta = abs(current - message.timestamp)
    if delta > max_age:
        raise InvalidPacket(RejectReason.STALE, f"time difference is {delta} seconds")


# -- building ---------------------------------------------------------------


def _plaintext(message: SpaMessage, digest_type: DigestType) -> tuple[str, str]:
    if not isinstance(message, SpaMessage):
        raise TypeError("message must be a SpaMessage")
    if not isinstance(digest_type, DigestType):
        raise TypeError("digest_type must be a DigestType")
    encoded = message.encode()
    digest = digest_b64(digest_type, encoded.encode("ascii"))
    return encoded, digest


def _finish(text: bytes, prefix: bytes, hmac_key: HmacKey | None) -> str:
    wire = text[len(prefix) :]
    if hmac_key is not None:
        wire += hmac_key.mac(text)
    return wire.decode("ascii")


def _check_keys(key: RijndaelKey, hmac_key: HmacKey | None) -> None:
    if hmac_key is None:
        return
    if not isinstance(hmac_key, HmacKey):
        raise TypeError("hmac_key must be an HmacKey")
    if key.mode is EncryptionMode.LEGACY:
        raise UsageError("legacy encryption mode cannot be combined with an HMAC key")
    if hmac.compare_digest(key.secret, hmac_key.secret):
        raise UsageError("the encryption key and the HMAC key must not be identical")


def _check_size(wire: str, lo: int, hi: int, kind: str) -> str:
    if len(wire) < lo:
        raise UsageError(
            f"the {kind} packet would be {len(wire)} characters and fwknopd ignores packets "
            f"shorter than {lo}: add an HMAC key or choose a longer digest"
        )
    if len(wire) > hi:
        raise UsageError(
            f"the {kind} packet would be {len(wire)} characters; fwknopd accepts at most {hi}"
            + (
                ": shorten the message or use a shorter HMAC"
                if kind == "Rijndael"
                else ": use a 2048-bit recipient key or drop the signature"
            )
        )
    return wire


def build_packet_from_parts(
    message: SpaMessage,
    key: RijndaelKey,
    *,
    salt: bytes,
    hmac_key: HmacKey | None = None,
    digest_type: DigestType = DigestType.SHA256,
) -> str:
    """Deterministic Rijndael packet from every part, including the 8-byte salt."""
    if not isinstance(key, RijndaelKey):
        raise TypeError("key must be a RijndaelKey")
    if not isinstance(salt, bytes) or len(salt) != 8:
        raise UsageError("salt must be 8 bytes")
    _check_keys(key, hmac_key)
    encoded, digest = _plaintext(message, digest_type)
    plaintext = f"{encoded}:{digest}".encode("ascii")
    aes_key, iv = derive_key_iv(key.kdf_secret, salt)
    body = aes_encrypt(key.mode, aes_key, iv, pkcs7_pad(plaintext))
    text = b64s_encode(SALTED + salt + body).encode("ascii")
    wire = _finish(text, RIJNDAEL_PREFIX, hmac_key)
    return _check_size(wire, MIN_PACKET, MIN_GPG_PACKET - 1, "Rijndael")


def build_packet(
    message: SpaMessage,
    key: Key,
    *,
    hmac_key: HmacKey | None = None,
    digest_type: DigestType = DigestType.SHA256,
    rng: Callable[[int], bytes] | None = None,
) -> str:
    """Encrypt ``message`` (Rijndael or GnuPG), add the HMAC, return the wire text."""
    if isinstance(key, RijndaelKey):
        salt = (rng or os.urandom)(8)
        return build_packet_from_parts(
            message, key, salt=salt, hmac_key=hmac_key, digest_type=digest_type
        )
    from .gpg import GpgEncryption  # noqa: PLC0415

    if not isinstance(key, GpgEncryption):
        raise TypeError("key must be a RijndaelKey or a GpgEncryption")
    if hmac_key is not None and not isinstance(hmac_key, HmacKey):
        raise TypeError("hmac_key must be an HmacKey")
    encoded, digest = _plaintext(message, digest_type)
    blob = key.backend.encrypt(
        f"{encoded}:{digest}".encode("ascii"),
        recipient=key.recipient,
        signer=key.signer,
        passphrase=key.signer_passphrase,
    )
    text = b64s_encode(blob).encode("ascii")
    if not text.startswith(GPG_PREFIX):
        raise UsageError(
            "the GnuPG message does not start as fwknop expects (hQ): "
            "the recipient key must be RSA of 2048 bits or more"
        )
    wire = _finish(text, GPG_PREFIX, hmac_key)
    return _check_size(wire, MIN_GPG_PACKET, MAX_PACKET - 1, "GnuPG")


# -- opening ----------------------------------------------------------------


def as_wire(data: str | bytes) -> bytes:
    """Wire text as bytes; ``InvalidPacket(NOT_BASE64)`` for a non-ASCII str."""
    if isinstance(data, str):
        try:
            return data.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidPacket(RejectReason.NOT_BASE64, "non-ASCII character") from None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise TypeError("packet data must be str or bytes")


def size_problem(n: int, min_length: int = MIN_PACKET) -> RejectReason | None:
    """Whether wire data of ``n`` characters is too short or too long to be a packet, or None.

    The one place the size limits are applied: ``open_packet`` and the
    server's screen both ask here (fwknopd's capture drops the same sizes
    silently that libfko then refuses).
    """
    if n < min_length:
        return RejectReason.TOO_SHORT
    if n >= MAX_PACKET:
        return RejectReason.TOO_LONG
    return None


def _precheck(wire: bytes, min_length: int) -> None:
    n = len(wire)
    size = size_problem(n, min_length)
    if size is RejectReason.TOO_SHORT:
        raise InvalidPacket(size, f"{n} characters, fewer than {min_length}")
    if size is not None:
        raise InvalidPacket(size, f"{n} characters")
    if wire.startswith(RIJNDAEL_PREFIX):
        raise InvalidPacket(RejectReason.PREFIX_STUFFING, "starts with the Rijndael prefix")
    if n > MIN_GPG_PACKET and wire.startswith(GPG_PREFIX):
        raise InvalidPacket(RejectReason.PREFIX_STUFFING, "starts with the GnuPG prefix")
    if wire.translate(None, _WIRE_CHARS):
        raise InvalidPacket(RejectReason.NOT_BASE64, "character outside base64")


def _verified(
    wire: bytes, encryption: EncryptionType, hmac_key: HmacKey | None, verified: MacMatch | None
) -> MacMatch:
    """The HMAC of ``wire`` checked (or the check the caller already made); else HMAC_MISMATCH."""
    if verified is None:
        if not isinstance(hmac_key, HmacKey):
            raise TypeError("hmac_key must be an HmacKey")
        verified = HmacVerifier((hmac_key,), encryption).first_match(wire, 0)
        if verified is None:
            raise InvalidPacket(RejectReason.HMAC_MISMATCH)
        return verified
    if not isinstance(verified, MacMatch):
        raise TypeError("verified must be the MacMatch of an HmacVerifier")
    if verified.encryption is not encryption or (
        verified.data is not wire and verified.data != wire
    ):
        raise UsageError("verified is the match of other data or of another encryption type")
    if hmac_key is not None and hmac_key != verified.key:
        raise UsageError("verified is the match of another HMAC key")
    return verified


def hmac_matches(data: bytes, hmac_key: HmacKey, encryption: EncryptionType) -> bool:
    """Whether ``data`` carries a valid HMAC for ``hmac_key``; never raises for bad data.

    ``data`` must be wire bytes; ``encryption`` says which prefix to restore
    (fwknopd decides by length: see :func:`classify`). To check against many
    keys, or to open the packet next without computing the MAC again, use an
    :class:`HmacVerifier`.
    """
    if not isinstance(hmac_key, HmacKey):
        raise TypeError("hmac_key must be an HmacKey")
    return HmacVerifier((hmac_key,), encryption).first_match(bytes(data), 0) is not None


def _decrypt_rijndael(full: bytes, key: RijndaelKey) -> tuple[bytes, bytes, str | None]:
    """Plaintext and salt as libfko reads them, and what is not canonical about the packet.

    Decoding, length and padding are as lenient as libfko's here, so that a
    packet fwknopd refuses is refused for fwknopd's reason (an HMAC'd packet
    sent to a stanza without HMAC key decrypts to non-ASCII); the third item
    says why the packet, if it gets through that, is still not taken.
    """
    try:
        raw = b64s_decode(full)
    except ValueError:
        raise InvalidPacket(RejectReason.NOT_BASE64) from None
    if len(raw) % 16 or len(raw) < 32:
        raise InvalidPacket(RejectReason.BAD_CIPHERTEXT_LENGTH, f"{len(raw)} bytes")
    salt = raw[8:16]
    aes_key, iv = derive_key_iv(key.kdf_secret, salt)
    padded = aes_decrypt(key.mode, aes_key, iv, raw[16:])
    plain = lenient_unpad(padded)
    if plain[16:17] != b":" or plain[:16].translate(None, _DIGITS):
        raise InvalidPacket(RejectReason.DECRYPT_FAILED)
    problem = noncanonical(full, raw)
    if problem is None and raw[:8] != SALTED:  # the first wire character carries 4 bits of it
        problem = "the Salted__ header is wrong"
    if problem is None and len(plain) == len(padded):
        # libfko keeps everything when the padding is not there: a packet whose last
        # block is all padding would open just the same without that block
        problem = "no PKCS#7 padding"
    return plain, salt, problem


def _parse_plaintext(plain: bytes) -> tuple[SpaMessage, str, str, DigestType]:
    if plain.translate(None, _PRINTABLE):
        raise InvalidPacket(RejectReason.NON_ASCII)
    if not MIN_ENCODED <= len(plain) < MAX_PACKET:
        raise InvalidPacket(RejectReason.BAD_PLAINTEXT_LENGTH, f"{len(plain)} bytes")
    text = plain.decode("ascii")
    if text.count(":") < 6:
        raise InvalidPacket(RejectReason.MALFORMED, "too few fields")
    encoded, _, digest = text.rpartition(":")
    candidates = _DIGEST_BY_LEN.get(len(digest))
    if candidates is None:
        raise InvalidPacket(RejectReason.BAD_DIGEST_TYPE, f"digest of {len(digest)} characters")
    raw_encoded = encoded.encode("ascii")
    for digest_type in candidates:
        if hmac.compare_digest(digest_b64(digest_type, raw_encoded), digest):
            break
    else:
        raise InvalidPacket(RejectReason.DIGEST_MISMATCH)
    try:
        message = SpaMessage.decode(encoded)
    except ValueError as exc:
        raise InvalidPacket(RejectReason.MALFORMED, str(exc)) from None
    return message, encoded, digest, digest_type


def open_packet(
    data: str | bytes,
    key: OpenKey,
    *,
    hmac_key: HmacKey | None = None,
    now: float | None = None,
    max_age: int | None = None,
    min_length: int = MIN_PACKET,
    allow_ipv6: bool = False,
    verified: MacMatch | None = None,
) -> OpenedPacket:
    """Verify, decrypt and parse one wire packet with one set of keys.

    Raises only ``InvalidPacket`` for bad data (and ``TypeError`` for
    arguments of the wrong type). With ``max_age`` the timestamp must be
    within that many seconds of ``now`` (default: the current time).
    Packets shorter than ``min_length`` are refused as ``TOO_SHORT``: by
    default fwknopd's 140, which the real client can undercut; lower it (to
    no less than libfko's 36) to open such a packet anyway. A message whose
    allow IP is IPv6 is refused as ``MALFORMED``, as fwknopd 2.6 refuses it,
    unless ``allow_ipv6``. ``verified``: an :class:`HmacVerifier`'s match for
    this very data, when the caller has checked the HMAC already (it is not
    computed again); ``hmac_key`` may then be left out.
    """
    if not MIN_ENCODED <= min_length <= MIN_PACKET:
        raise UsageError(f"min_length must be {MIN_ENCODED}..{MIN_PACKET}")
    wire = as_wire(data)
    _precheck(wire, min_length)
    if isinstance(key, RijndaelKey):
        encryption = EncryptionType.RIJNDAEL
    else:
        from .gpg import GpgDecryption  # noqa: PLC0415

        if not isinstance(key, GpgDecryption):
            raise TypeError("key must be a RijndaelKey or a GpgDecryption")
        encryption = EncryptionType.GPG
    prefix = encryption.wire_prefix
    mac = None
    if hmac_key is not None or verified is not None:
        match = _verified(wire, encryption, hmac_key, verified)
        hmac_key = match.key
        n = hmac_key.mac_length
        full = prefix + wire[:-n]
        mac = wire[-n:].decode("ascii")
        body_len = len(full)
    else:
        full = prefix + wire
        body_len = len(wire)
    signature = None
    salt = None
    if isinstance(key, RijndaelKey):
        if body_len >= MIN_GPG_PACKET:
            raise InvalidPacket(RejectReason.WRONG_ENCRYPTION_TYPE, "long enough to be GnuPG")
        plain, salt, problem = _decrypt_rijndael(full, key)
        etype, mode = EncryptionType.RIJNDAEL, key.mode
    else:
        if len(wire) < MIN_GPG_PACKET:
            raise InvalidPacket(RejectReason.WRONG_ENCRYPTION_TYPE, "too short to be GnuPG")
        from .gpg import GpgDecryptError  # noqa: PLC0415

        try:  # before gpg runs (it is costly): nothing of libfko's to keep in order here
            blob = b64s_decode_strict(full)
        except ValueError as exc:
            raise InvalidPacket(RejectReason.NOT_CANONICAL, str(exc)) from None
        problem = None
        try:
            result = key.backend.decrypt(blob, passphrase=key.passphrase)
        except GpgDecryptError as exc:
            raise InvalidPacket(RejectReason.DECRYPT_FAILED, str(exc)) from None
        plain, signature = result.plaintext, result.signature
        etype, mode = EncryptionType.GPG, EncryptionMode.ASYMMETRIC
    message, encoded, digest, digest_type = _parse_plaintext(plain)
    if problem is not None:  # all fwknopd checks passed: it would take this packet
        raise InvalidPacket(RejectReason.NOT_CANONICAL, problem)
    if not allow_ipv6 and message.allow_ip_is_ipv6:
        raise InvalidPacket(RejectReason.MALFORMED, "the allow IP is IPv6")
    if max_age is not None:
        check_age(message, now=now, max_age=max_age)
    return OpenedPacket(
        message=message,
        encoded=encoded,
        digest=digest,
        digest_type=digest_type,
        encryption_type=etype,
        encryption_mode=mode,
        wire=wire.decode("ascii"),
        hmac=mac,
        hmac_type=hmac_key.type if hmac_key is not None else None,
        salt=salt,
        gpg_signature=signature,
    )
