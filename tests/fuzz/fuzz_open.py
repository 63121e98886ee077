"""atheris fuzz target: opening arbitrary bytes raises only InvalidPacket.

    python tests/fuzz/fuzz_open.py [libFuzzer options, e.g. -runs=100000 corpus/]

The input's first byte picks the key setup (mode, HMAC type or none), the
rest is the packet. Half the time the input is spliced into a real packet's
text (prefix kept), so the fuzzer reaches past the cheap checks: HMAC,
decryption, padding, field parsing. Anything other than ``InvalidPacket``
escaping ``open_packet`` is a crash.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from fwknop_core import (
        EncryptionMode,
        HmacKey,
        HmacType,
        InvalidPacket,
        RijndaelKey,
        SpaMessage,
        build_packet,
        open_packet,
    )

MODES = [m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC]
SETUPS: list[tuple[RijndaelKey, HmacKey | None, str]] = []
for _i, _mode in enumerate(MODES):
    for _h in [None, *HmacType]:
        if _mode is EncryptionMode.LEGACY and _h is not None:
            continue
        _key = RijndaelKey(bytes([_i + 1]) * 32, _mode)
        _hkey = None if _h is None else HmacKey(b"fuzz-hmac-key" * 4, _h)
        _msg = SpaMessage.access_request("198.18.0.2", "tcp/22", username="fuzz", now=1_800_000_000)
        SETUPS.append((_key, _hkey, build_packet(_msg, _key, hmac_key=_hkey)))


def test_one_input(data: bytes) -> None:
    """Open one input; only InvalidPacket may escape."""
    if len(data) < 2:
        return
    key, hkey, valid = SETUPS[data[0] % len(SETUPS)]
    body = data[2:]
    if data[1] & 1:  # splice into a real packet so the fuzzer gets deep
        cut = (data[1] >> 1) % len(valid)
        body = valid[:cut].encode() + body + valid[cut + len(body) :].encode()
    with contextlib.suppress(InvalidPacket):
        open_packet(body, key, hmac_key=hkey)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
