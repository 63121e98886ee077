"""The key-share text that phones scan: ``KEY_BASE64:<b64> HMAC_KEY_BASE64:<b64>``.

This is the format fwknop's console-qr script and fwknop-gui put in QR codes
and the Fwknop2 Android app reads (client.md §6). We always write the base64
forms, separated by one space, because plain-text keys cannot carry spaces
or colons through that format. Parsing is forgiving about what people paste:
any case, ``NAME:VALUE``, ``NAME: VALUE`` or access.conf-style ``NAME  VALUE``
lines, stray quotes, semicolons and newlines; plain ``KEY:``/``HMAC_KEY:``
items are accepted too. What is an item and what is a passphrase that
merely holds the word "key" is decided in ``_shareitem`` (one grammar for
the parser and for the client's "is this share text?").
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import UsageError
from ._keys import HmacKey, RijndaelKey
from ._shareitem import share_items
from ._types import EncryptionMode, HmacType

__all__ = ["SharedKeys", "encode_share", "parse_share"]

_TRIM = "\"';,"


@dataclass(frozen=True, slots=True, repr=False)
class SharedKeys:
    """Keys taken from a share text; either may be missing."""

    rijndael: RijndaelKey | None
    hmac: HmacKey | None
    rijndael_was_base64: bool = True
    hmac_was_base64: bool = True

    def __repr__(self) -> str:
        return f"SharedKeys({self.rijndael!r}, {self.hmac!r})"


def encode_share(key: RijndaelKey | None, hmac_key: HmacKey | None = None) -> str:
    """The share text for these keys (base64 forms, one space between items)."""
    if key is None and hmac_key is None:
        raise UsageError("nothing to share: no key given")
    items = []
    if key is not None:
        items.append(f"KEY_BASE64:{key.to_base64()}")
    if hmac_key is not None:
        items.append(f"HMAC_KEY_BASE64:{hmac_key.to_base64()}")
    return " ".join(items)


def parse_share(
    text: str,
    *,
    mode: EncryptionMode = EncryptionMode.CBC,
    hmac_type: HmacType = HmacType.SHA256,
) -> SharedKeys:
    """Read keys from pasted or scanned share text; ``UsageError`` says what is wrong."""
    if not isinstance(text, str):
        raise TypeError("share text must be a str")
    found: dict[str, str] = {}
    for written, raw in share_items(text):
        name = written.upper()
        value = raw.strip(_TRIM)
        if not value:
            continue
        if name in found and found[name] != value:
            raise UsageError(f"share text has two different {name} values")
        found[name] = value
    for plain, b64 in (("KEY", "KEY_BASE64"), ("HMAC_KEY", "HMAC_KEY_BASE64")):
        if plain in found and b64 in found:
            raise UsageError(f"share text has both {plain} and {b64}; keep one")
    if not found:
        raise UsageError("no KEY_BASE64, KEY, HMAC_KEY_BASE64 or HMAC_KEY item found")
    rijndael = None
    if "KEY_BASE64" in found:
        rijndael = RijndaelKey.from_base64(found["KEY_BASE64"], mode)
    elif "KEY" in found:
        rijndael = RijndaelKey.from_passphrase(found["KEY"], mode)
    hmac_key = None
    if "HMAC_KEY_BASE64" in found:
        hmac_key = HmacKey.from_base64(found["HMAC_KEY_BASE64"], hmac_type)
    elif "HMAC_KEY" in found:
        hmac_key = HmacKey.from_passphrase(found["HMAC_KEY"], hmac_type)
    return SharedKeys(
        rijndael=rijndael,
        hmac=hmac_key,
        rijndael_was_base64="KEY" not in found,
        hmac_was_base64="HMAC_KEY" not in found,
    )
