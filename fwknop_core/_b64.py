"""fwknop's base64: the standard alphabet, padding always stripped.

``b64s_decode`` follows libfko: stop at the first ``=``, refuse characters
outside the alphabet, tolerate missing padding and drop a dangling sixth-bit
character (a length of 1 mod 4). It reads the fields inside a message, which
the inner digest and the encryption already fix.

``noncanonical`` and ``b64s_decode_strict`` judge the wire text, which
nothing authenticates when a stanza has no HMAC key: they take only what
``b64s_encode`` writes (no ``=``, no dangling character, no bit set past the
last byte), so one run of bytes has exactly one text, and a captured packet
cannot be sent again as other text that decodes the same.
"""

from __future__ import annotations

import binascii

__all__ = [
    "ALPHABET",
    "b64_decode_padded",
    "b64s_decode",
    "b64s_decode_strict",
    "b64s_encode",
    "noncanonical",
]

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PAD = (b"", b"", b"==", b"=")
# by length mod 4: the characters that may end a canonical text (no bit set past the last
# byte: the low 4 bits of the last character free with 2 left over, the low 2 with 3)
_LAST = (ALPHABET, b"", ALPHABET[::16], ALPHABET[::4])


def b64s_encode(data: bytes) -> str:
    """Base64 without padding, as every protocol field is written."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").decode("ascii")


def b64s_decode(text: bytes) -> bytes:
    """Decode unpadded base64 the way libfko does; ``ValueError`` on a bad character."""
    eq = text.find(b"=")
    if eq >= 0:
        text = text[:eq]
    if text.translate(None, ALPHABET):
        raise ValueError("character outside the base64 alphabet")
    rem = len(text) % 4
    if rem == 1:
        text = text[:-1]
    elif rem:
        text += _PAD[rem]
    return binascii.a2b_base64(text)


def b64s_decode_strict(text: bytes) -> bytes:
    """Decode the one text ``b64s_encode`` writes for some bytes; ``ValueError`` says how not.

    Unlike ``b64s_decode`` a character outside the alphabet is an error, not
    skipped, and so are ``=``, a dangling character and unused bits set.
    """
    rem = len(text) % 4
    if rem == 1 or b"=" in text:
        raise ValueError(noncanonical(text, b""))
    try:
        raw = binascii.a2b_base64(text + _PAD[rem], strict_mode=True)
    except binascii.Error:
        raise ValueError("a character outside the base64 alphabet") from None
    # strictly decoded, with its padding: only unused bits can still make it another spelling
    # (the check ``noncanonical`` makes by encoding again, in one lookup: junk pays this)
    if text and text[-1] not in _LAST[rem]:
        raise ValueError(noncanonical(text, raw))
    return raw


def noncanonical(text: bytes, raw: bytes) -> str | None:
    """Why ``text`` is not what ``b64s_encode`` writes for ``raw`` (its decoding), or None."""
    if b"=" in text:
        return "'=' or text after the data"
    if len(text) % 4 == 1:
        return "a dangling last character"
    if b64s_encode(raw).encode("ascii") == text:
        return None
    return "unused bits set in the last character"


def b64_decode_padded(text: str) -> bytes:
    """Decode a key written as ordinary base64 (``KEY_BASE64``); ``ValueError`` if invalid."""
    raw = text.strip().encode("ascii", "replace")
    body = raw.rstrip(b"=")
    if not body or body.translate(None, ALPHABET) or len(raw) - len(body) > 2:
        raise ValueError("not base64")
    if len(body) % 4 == 1:
        raise ValueError("truncated base64")
    return b64s_decode(body)
