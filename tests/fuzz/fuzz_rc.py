"""atheris fuzz target: importing any ~/.fwknoprc text plans, warns, and never raises.

    python tests/fuzz/fuzz_rc.py [libFuzzer options, e.g. -runs=100000 corpus/]

``plan_import`` turns whatever the file holds into profiles, keys and
warnings; it has no error of its own to raise. The first byte picks raw
text or stanzas built from the rest (real rc variable names with fuzzed
values, a ``[default]`` merged under named stanzas, a destination or none),
so the mapping onto profile fields and key decoding is reached. A planned
profile must also export back to rc text (``export_stanza``), whose only
refusal is a value the rc format cannot hold (``UsageError``).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from fwknop_core import HmacKey, RijndaelKey, UsageError
    from fwknop_tui.errors import KeyMissingError
    from fwknop_tui.wallet.keys import ProfileKeys, decode_stored
    from fwknop_tui.wallet.rc import export_stanza, merge_rc, parse_rc, plan_import

VARIABLES = [
    "ACCESS", "ALLOW_IP", "SPA_SERVER", "SPA_SERVER_PORT", "SPA_SERVER_PROTO", "SPA_SOURCE_PORT",
    "RAND_PORT", "FW_TIMEOUT", "CLIENT_TIMEOUT", "TIME_OFFSET", "DIGEST_TYPE", "ENCRYPTION_MODE",
    "KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64", "HMAC_DIGEST_TYPE", "USE_HMAC",
    "USE_GPG", "GPG_RECIPIENT", "GPG_SIGNER", "GPG_HOMEDIR", "GPG_EXE", "GPG_SIGNING_PW",
    "GPG_SIGNING_PW_BASE64", "SPOOF_USER", "SPOOF_SOURCE_IP", "NAT_ACCESS", "NAT_LOCAL",
    "NAT_RAND_PORT", "NAT_PORT", "HTTP_USER_AGENT", "RESOLVE_IP_HTTPS", "RESOLVE_URL",
    "RESOLVE_HTTP_ONLY", "SERVER_RESOLVE_IPV4", "KEY_FILE", "VERBOSE", "BOGUS",
]  # fmt: skip
VALUES = [
    "Y", "N", "tcp/22", "udp/53,tcp/22", "198.18.0.1", "source", "resolve", "62201", "-1",
    "sha256", "sha3_512", "md5", "cbc", "legacy", "ctr", "5m", "-1M", "+1H", "udpraw", "icmp",
    "tcpraw", "https://x/", "http://x/", "wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg=",
    "dGVzdA==", "=", "", "10.0.0.2,88",
]  # fmt: skip


def _stanzas(fdp: atheris.FuzzedDataProvider) -> str:
    out = []
    for i in range(fdp.ConsumeIntInRange(1, 4)):
        name = "default" if i == 0 and fdp.ConsumeBool() else fdp.ConsumeUnicode(6)
        out.append(f"[{name}]")
        for _ in range(fdp.ConsumeIntInRange(0, 10)):
            var = fdp.PickValueInList(VARIABLES)
            value = fdp.PickValueInList(VALUES) if fdp.ConsumeBool() else fdp.ConsumeUnicode(20)
            sep = fdp.PickValueInList([" ", "\t", ": ", ":", "  "])
            out.append(f"{var}{sep}{value}")
    return "\n".join(out) + "\n"


def _keys(slots: dict[str, str], plan_profile: object) -> ProfileKeys:
    """The keys a plan would store, as the wallet would read them back."""
    got: dict[str, object] = {}
    for slot, value in slots.items():
        if slot == "gpg-signing-pw":
            got[slot] = value
        else:
            got[slot] = decode_stored(slot, value, plan_profile)  # type: ignore[arg-type]
    rijndael, hmac = got.get("rijndael"), got.get("hmac")
    pw = got.get("gpg-signing-pw")
    return ProfileKeys(
        rijndael if isinstance(rijndael, RijndaelKey) else None,
        hmac if isinstance(hmac, HmacKey) else None,
        pw if isinstance(pw, str) else None,
    )


def test_one_input(data: bytes) -> None:
    """Plan an import of the input; only export may refuse, with UsageError."""
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    text = data[1:].decode("utf-8", "replace") if data[0] & 1 else _stanzas(fdp)
    destination = [None, "198.18.0.1", "fw.example.org"][data[0] % 3]
    parse_rc(text)
    for plan in plan_import(text, "fuzz", {"default"}, destination=destination):
        if plan.profile is None:
            assert plan.reason, plan
            continue
        try:
            keys = _keys(plan.keys, plan.profile)
        except KeyMissingError as exc:  # what was planned must read back
            raise AssertionError(f"a planned key does not read back: {exc}") from None
        with contextlib.suppress(UsageError):
            stanza, _lost = export_stanza(plan.profile, keys)
            merge_rc(text, {plan.profile.name: stanza})


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
