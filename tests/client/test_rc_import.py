"""Importing the rc files people really have: a [default] with keys, stanzas with no server.

The shapes come from fwknop's own test suite (most of its rc files hold only
a ``[default]`` stanza; the C client takes ``-D`` on its command line); the
text here is our own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fwknop_core import RijndaelKey
from fwknop_tui.errors import ExitCode
from fwknop_tui.wallet.rc import plan_import
from fwknop_tui.wallet.secrets import MemoryStore
from tests.client.conftest import Terminal
from tests.client.conftest import run_cli as _run

KEY = "dGhpcnR5LXR3byBieXRlcyBvZiB0ZXN0IGtleS4uLi4="
HMAC = "YW4gaG1hYyBrZXkgZm9yIHRoZSBpbXBvcnQgdGVzdHMsIHNpeHR5LWZvdXIgYnl0ZXMgbG9uZy4uLi4uLi4uLg=="
DEFAULT_ONLY = f"""\
# what `fwknop --key-gen --save-rc-stanza` leaves for the default stanza
[default]
#SPA_SERVER          192.0.2.1
HMAC_DIGEST_TYPE    sha512
KEY_BASE64:         {KEY}
HMAC_KEY_BASE64     {HMAC}
"""


def _rc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fwknoprc"
    path.write_text(text)
    return path


def test_a_default_stanza_with_keys_is_a_profile_that_needs_a_destination() -> None:
    (plan,) = plan_import(DEFAULT_ONLY, "rc")
    assert plan.stanza == "default" and plan.profile is None and plan.needs_host
    assert "has no SPA_SERVER" in plan.reason and "--destination" in plan.reason
    (plan,) = plan_import(DEFAULT_ONLY, "rc", destination="198.18.0.1")
    assert plan.profile is not None and plan.profile.host == "198.18.0.1"
    assert plan.profile.hmac_type is not None and plan.profile.hmac_type.fwknop_name == "sha512"
    assert plan.keys == {"rijndael": KEY, "hmac": HMAC}


def test_without_a_destination_nothing_is_imported_and_the_reason_is_given(
    tmp_path: Path, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _rc(tmp_path, DEFAULT_ONLY)
    code, _out, err = _run(["import-rc", str(rc)], memory, capsys)
    assert code == ExitCode.USAGE
    assert f"{rc}:2: [default]: has no SPA_SERVER" in err
    assert "give the server with --destination HOST" in err
    assert _run(["list"], memory, capsys)[1] == ""


def test_destination_imports_it(
    tmp_path: Path, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _rc(tmp_path, DEFAULT_ONLY)
    code, out, _err = _run(["import-rc", str(rc), "-D", "198.18.0.1"], memory, capsys)
    assert code == ExitCode.OK
    assert out == "default: 198.18.0.1, keys: rijndael, hmac\n"
    shown = json.loads(_run(["show", "default", "--json"], memory, capsys)[1])
    assert shown["profile"]["host"] == "198.18.0.1" and shown["profile"]["hmac_type"] == "sha512"
    assert memory.get_many("default", ["rijndael", "hmac"]) == {"rijndael": KEY, "hmac": HMAC}


def test_on_a_terminal_the_destination_is_asked_for_each_stanza(
    tmp_path: Path,
    memory: MemoryStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rc = _rc(tmp_path, DEFAULT_ONLY + "\n[lab]\nSPA_SERVER_PORT 62202\n\n[spare]\nKEY other\n")
    monkeypatch.setattr("sys.stdin", Terminal("198.18.0.1\n198.18.0.7\n\n"))
    code, out, err = _run(["import-rc", str(rc)], memory, capsys)
    assert code == ExitCode.OK, err
    assert err.count("which host runs its fwknopd?") == 3
    assert out.splitlines() == [
        "default: 198.18.0.1, keys: rijndael, hmac",
        "lab: 198.18.0.7, keys: rijndael, hmac",
    ]
    assert "[spare]: has no SPA_SERVER" in err and "1 stanza(s) not imported" in err
    lab = json.loads(_run(["show", "lab", "--json"], memory, capsys)[1])["profile"]
    assert lab["port"] == 62202  # its own setting over [default]'s


def test_a_default_with_a_server_needs_nothing_more(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = DEFAULT_ONLY.replace("#SPA_SERVER ", "SPA_SERVER ") + "ACCESS tcp/2222\n"
    code, out, err = _run(["import-rc", str(_rc(tmp_path, text))], memory, capsys)
    assert code == ExitCode.OK, err
    assert out == "default: 192.0.2.1, keys: rijndael, hmac\n"


def test_defaults_without_keys_or_a_server_are_not_a_profile() -> None:
    text = "[default]\nSPA_SERVER_PORT 62202\n\n[box]\nSPA_SERVER 198.18.0.1\nKEY pw\n"
    assert [p.stanza for p in plan_import(text, "rc")] == ["box"]


def test_every_stanza_keeps_its_own_reason(
    tmp_path: Path, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "[good]\nSPA_SERVER 198.18.0.1\nKEY_BASE64 " + KEY + "\n\n"
        "[badtype]\nSPA_SERVER 198.18.0.2\nKEY pw\nHMAC_KEY_BASE64 " + HMAC + "\n"
        "HMAC_DIGEST_TYPE sha999\n\n"
        "[badkey]\nSPA_SERVER 198.18.0.3\nKEY_BASE64 w^KM%25\n\n"
        "[same]\nSPA_SERVER 198.18.0.4\nKEY_BASE64 " + KEY + "\nHMAC_KEY_BASE64 " + KEY + "\n"
    )
    rc = _rc(tmp_path, text)
    code, out, err = _run(["import-rc", str(rc)], memory, capsys)
    assert code == ExitCode.OK
    assert out.splitlines() == ["good: 198.18.0.1, keys: rijndael"]
    assert f"{rc}:9: [badtype]: HMAC_DIGEST_TYPE: unknown HMAC type 'sha999'" in err
    assert f"{rc}:13: [badkey]: Rijndael key: KEY_BASE64 is not valid base64" in err
    assert "[same]: the Rijndael key and the HMAC key are the same" in err
    assert "3 stanza(s) not imported" in err


def test_gpg_signing_pw_without_gnupg_is_the_rijndael_passphrase() -> None:
    (plan,) = plan_import("[testssh]\nGPG_SIGNING_PW  secret-pw\n", "rc", destination="h1")
    assert plan.profile is not None and plan.profile.key_format == "passphrase"
    assert plan.keys == {"rijndael": RijndaelKey(b"secret-pw").to_base64()}
    assert any("GPG_SIGNING_PW without USE_GPG" in w for w in plan.warnings)


def test_nat_rand_port_without_nat_access_is_dropped_with_a_warning() -> None:
    text = f"[default]\nKEY_BASE64 {KEY}\nNAT_RAND_PORT Y\n"
    (plan,) = plan_import(text, "rc", destination="198.18.0.1")
    assert plan.profile is not None and not plan.profile.nat_random_port
    assert any("NAT_RAND_PORT without NAT_ACCESS" in w for w in plan.warnings)


def test_a_setting_without_a_value_is_skipped_not_stored_as_an_empty_key() -> None:
    """Found by tests/fuzz/fuzz_rc.py: 'HMAC_KEY ' planned an empty HMAC key."""
    (plan,) = plan_import(f"[default]\nKEY_BASE64 {KEY}\nHMAC_KEY \n", "rc", destination="h")
    assert plan.profile is not None and plan.keys == {"rijndael": KEY}
    assert "rc:3: HMAC_KEY: no value; skipped" in plan.warnings


def test_an_hmac_passphrase_is_checked_like_a_base64_key() -> None:
    (plan,) = plan_import(
        f"[default]\nKEY_BASE64 {KEY}\nHMAC_KEY {'h' * 200}\n", "rc", destination="h"
    )
    assert plan.profile is None and "HMAC key must be 1..128 bytes" in plan.reason
