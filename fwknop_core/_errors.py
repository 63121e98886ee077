"""The two ways an SPA operation fails: a hostile packet, or a caller mistake.

``InvalidPacket`` is the only exception that opening a packet raises for bad
input (the Fernet rule: callers catch one thing), and it carries a
``RejectReason`` so logs can still say why. ``UsageError`` means the caller
asked for something the protocol cannot express. Neither ever carries key
material: details name fields and lengths, never values of secrets.
"""

from __future__ import annotations

import enum

__all__ = ["InvalidPacket", "RejectReason", "SpaError", "UsageError"]


class RejectReason(enum.Enum):
    """Why a packet was refused; ``fwknop_text`` is what fwknopd logs for it.

    ``NOT_CANONICAL`` is ours alone (fwknopd takes such packets, so it has no
    words for them): the wire text is not the one form a sender writes.
    ``BAD_FORWARDED_FOR``: fwknopd logs it and opens for the packet's source
    (the proxy) instead; we refuse.
    """

    TOO_SHORT = ("too short", "packet shorter than fwknopd accepts (140 characters)")
    TOO_LONG = ("too long", "packet of 1500 characters or more")
    NOT_BASE64 = ("not base64", "Data is not an SPA message")
    PREFIX_STUFFING = ("prefix stuffing", "Data is not a valid SPA message format")
    BAD_FORWARDED_FOR = ("bad X-Forwarded-For", "Error parsing X-Forwarded-For header")
    WRONG_ENCRYPTION_TYPE = (
        "wrong encryption type",
        "No stanza encryption mode match for encryption type",
    )
    HMAC_MISMATCH = (
        "HMAC mismatch",
        "Args contain invalid data: FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL",
    )
    BAD_CIPHERTEXT_LENGTH = (
        "bad ciphertext length",
        "Args contain invalid data: FKO_ERROR_INVALID_DATA_ENCRYPT_CIPHERLEN_VALIDFAIL",
    )
    NOT_CANONICAL = ("not canonical", "")
    DECRYPT_FAILED = ("decrypt failure", "Decryption failed or decrypted data is invalid")
    NON_ASCII = (
        "non-printable plaintext",
        "Args contain invalid data: FKO_ERROR_INVALID_DATA_DECODE_NON_ASCII",
    )
    BAD_PLAINTEXT_LENGTH = ("bad plaintext length", "Unexpected or invalid size for decrypted data")
    BAD_DIGEST_TYPE = ("bad digest type", "Invalid digest type")
    DIGEST_MISMATCH = (
        "bad digest",
        "The computed digest did not match the digest in the spa data",
    )
    MALFORMED = ("malformed field", "Args contain invalid data")
    STALE = ("stale", "SPA data time difference is too great")
    # the x25519 format (docs/x25519-spa.md): fwknopd has no such packets, so the
    # second text says what an fwknop-tui server means
    UNSUPPORTED_VERSION = (
        "unsupported version",
        "x25519 packet of a format version we do not know",
    )
    UNKNOWN_KEY_ID = ("unknown key id", "no client public key has this key id")
    AUTH_FAILED = ("authentication failed", "AEAD tag mismatch: wrong keys or a tampered packet")

    def __init__(self, label: str, fwknop_text: str) -> None:
        self.label = label
        self.fwknop_text = fwknop_text


class SpaError(Exception):
    """Base class of every error raised by fwknop_core."""


class UsageError(SpaError, ValueError):
    """The caller asked for something invalid (a bad field, key or option)."""


class InvalidPacket(SpaError):  # noqa: N818 - named like Fernet's InvalidToken
    """A received packet was refused; ``reason`` says why, ``detail`` adds context."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        # the message is formatted only when read: floods of junk raise this a lot
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.label}: {self.detail}" if self.detail else self.reason.label

    def __reduce__(self) -> tuple[type[InvalidPacket], tuple[RejectReason, str]]:
        return (type(self), (self.reason, self.detail))
