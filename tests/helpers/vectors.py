"""The shared vectors (made by the real fwknop 2.6.10) as core key objects."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fwknop_core import EncryptionMode, HmacKey, HmacType, RijndaelKey

DATA = Path(__file__).resolve().parent.parent / "data" / "vectors"
GPG_DIR = DATA / "gpg"
SERVER_GPG_KEY = "7328BAB76A62046A"  # encryption subkey of the server key
SERVER_GPG_FPR = "B7E3D81AFD473E1D58AABA9DCE6EA1FE70E8ED80"
CLIENT_GPG_KEY = "823FF36F67CD0C2C"
CLIENT_GPG_FPR = "1844386F46DB4528B2A58C7C823FF36F67CD0C2C"


@cache
def vectors() -> list[dict[str, Any]]:
    """The 61 valid packets."""
    data: list[dict[str, Any]] = json.loads((DATA / "vectors.json").read_text())["vectors"]
    return data


@cache
def negatives() -> list[dict[str, Any]]:
    """The 30 negative cases."""
    data: list[dict[str, Any]] = json.loads((DATA / "negative.json").read_text())["cases"]
    return data


def rijndael_key(keys: dict[str, Any]) -> RijndaelKey:
    """The Rijndael key a case used."""
    mode = EncryptionMode.from_name(keys.get("encryption_mode") or "CBC")
    if "key_base64" in keys:
        return RijndaelKey.from_base64(keys["key_base64"], mode)
    return RijndaelKey.from_passphrase(keys["key"], mode)


def hmac_key(keys: dict[str, Any]) -> HmacKey | None:
    """The HMAC key a case used, or None."""
    if not keys.get("hmac_type"):
        return None
    kind = HmacType.from_name(keys["hmac_type"])
    if "hmac_key_base64" in keys:
        return HmacKey.from_base64(keys["hmac_key_base64"], kind)
    return HmacKey.from_passphrase(keys["hmac_key"], kind)


def access_conf_value(access_conf: str, name: str) -> str | None:
    """A variable's value in a case's access.conf text."""
    for line in access_conf.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == name:
            return parts[1].strip()
    return None


def stanza_keys(access_conf: str) -> tuple[RijndaelKey | None, HmacKey | None]:
    """The Rijndael and HMAC keys of the (single) stanza in a case's access.conf."""
    mode = EncryptionMode.from_name(access_conf_value(access_conf, "ENCRYPTION_MODE") or "CBC")
    key = None
    if (b64 := access_conf_value(access_conf, "KEY_BASE64")) is not None:
        key = RijndaelKey.from_base64(b64, mode)
    elif (text := access_conf_value(access_conf, "KEY")) is not None:
        key = RijndaelKey.from_passphrase(text, mode)
    kind = HmacType.from_name(access_conf_value(access_conf, "HMAC_DIGEST_TYPE") or "sha256")
    hkey = None
    if (b64 := access_conf_value(access_conf, "HMAC_KEY_BASE64")) is not None:
        hkey = HmacKey.from_base64(b64, kind)
    elif (text := access_conf_value(access_conf, "HMAC_KEY")) is not None:
        hkey = HmacKey.from_passphrase(text, kind)
    return key, hkey
