"""fwknop's base64: the standard alphabet, padding always stripped.

Decoding follows libfko: stop at the first ``=``, refuse characters outside
the alphabet, tolerate missing padding and drop a dangling sixth-bit
character (a length of 1 mod 4).
"""

from __future__ import annotations

import binascii

__all__ = ["ALPHABET", "b64_decode_padded", "b64s_decode", "b64s_decode_canonical", "b64s_encode"]

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PAD = (b"", b"", b"==", b"=")


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


def b64s_decode_canonical(text: bytes) -> bytes:
    """Decode unpadded base64 that must be exactly ``b64s_encode`` of its bytes.

    Unlike libfko's lenient decoder this refuses ``=``, a dangling character
    and non-zero unused bits, so one byte string has one text: a format whose
    replay digest is taken over the text cannot be replayed under another
    spelling. ``ValueError`` if the text is not canonical.
    """
    rem = len(text) % 4
    if rem == 1 or b"=" in text:
        raise ValueError("not canonical unpadded base64")
    try:  # strict: any character outside the alphabet is an error, not skipped
        raw = binascii.a2b_base64(text + _PAD[rem], strict_mode=True)
    except binascii.Error:
        raise ValueError("not canonical unpadded base64") from None
    if rem and binascii.b2a_base64(raw[-(rem - 1) :], newline=False)[:rem] != text[-rem:]:
        raise ValueError("not canonical unpadded base64")
    return raw


def b64_decode_padded(text: str) -> bytes:
    """Decode a key written as ordinary base64 (``KEY_BASE64``); ``ValueError`` if invalid."""
    raw = text.strip().encode("ascii", "replace")
    body = raw.rstrip(b"=")
    if not body or body.translate(None, ALPHABET) or len(raw) - len(body) > 2:
        raise ValueError("not base64")
    if len(body) % 4 == 1:
        raise ValueError("truncated base64")
    return b64s_decode(body)
