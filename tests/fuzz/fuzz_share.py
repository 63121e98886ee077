"""atheris fuzz target: share text (a QR code's, keygen output, a pasted stanza) never crashes.

    python tests/fuzz/fuzz_share.py [libFuzzer options, e.g. -runs=100000 corpus/]

``parse_share`` raises only ``UsageError``; the wallet's reading of pasted
or piped key text (``stored_from_text``, the share text in a key file or on
stdin) raises only ``KeyMissingError``. Keys that parse must survive a
round trip through ``encode_share``. The first byte picks the cipher mode,
HMAC type and key format; half the inputs are spliced into a real share
text so the fuzzer gets past the item names.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from fwknop_core import EncryptionMode, HmacType, UsageError, encode_share, parse_share
    from fwknop_tui.errors import KeyMissingError
    from fwknop_tui.wallet.keys import stored_from_text
    from fwknop_tui.wallet.profiles import Profile

MODES = [m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC]
VALID = (
    "KEY_BASE64:wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg= "
    "HMAC_KEY_BASE64:Yh+xizBnl6FotC5ec7FanVGClRMlsOAPh2u6eovnerfBVKwaVKzjGoblFMHMc593TNyi0dWn4o"
    "pLoTIV9q/ttg== "
)
PROFILES = [
    Profile.from_table(
        "fuzz",
        {
            "host": "h",
            "encryption_mode": mode.label.lower(),
            "hmac_type": "none" if mode is EncryptionMode.LEGACY else kind.fwknop_name,
            "key_format": fmt,
        },
    )
    for mode in MODES
    for kind in HmacType
    for fmt in ("base64", "passphrase")
]


def test_one_input(data: bytes) -> None:
    """Parse the input as share text every way the client does."""
    if len(data) < 2:
        return
    profile = PROFILES[data[0] % len(PROFILES)]
    text = data[2:].decode("utf-8", "replace")
    if data[1] & 1:
        cut = (data[1] >> 1) % len(VALID)
        text = VALID[:cut] + text + VALID[cut + len(text) :]
    kind = profile.hmac_type or HmacType.SHA256
    try:
        shared = parse_share(text, mode=profile.encryption_mode, hmac_type=kind)
    except UsageError:
        pass
    else:
        again = parse_share(
            encode_share(shared.rijndael, shared.hmac) if shared.rijndael or shared.hmac else text,
            mode=profile.encryption_mode,
            hmac_type=kind,
        )
        assert again.rijndael == shared.rijndael and again.hmac == shared.hmac
    for slot in ("rijndael", "hmac", "gpg-signing-pw"):
        with contextlib.suppress(KeyMissingError):
            stored_from_text(slot, text, profile)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
