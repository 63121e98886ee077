"""fwknopd's actions that run and exit: config checks, the dump (no key in it), key generation."""

from __future__ import annotations

from pathlib import Path

import pytest
from fwknop_server.cli import ExitCode, main

from fwknop_core import HmacKey, HmacType, RijndaelKey, generate_keys

KEYS = generate_keys()


def _files(tmp_path: Path, access: str) -> list[str]:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    acc = tmp_path / "access.conf"
    acc.write_text(access)
    return ["-c", str(conf), "-a", str(acc)]


GOOD = (
    f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\n"
    f"HMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\nOPEN_PORTS tcp/22\n"
)


def test_exit_parse_config_reports_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _files(tmp_path, "SOURCE ANY\nKEY_BASE64 __CHANGEME__\nSOURCE 1.2.3.4/40\nKEY x\n")
    assert main([*args, "--exit-parse-config"]) == ExitCode.ERROR
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("fwknopd: ") and err[0].endswith(
        "access.conf:2: KEY_BASE64 is still __CHANGEME__: put a key here (fwknop --key-gen)"
    )
    assert err[1].endswith(
        "access.conf:3: SOURCE: '1.2.3.4/40' is not ANY, an address or a network"
    )


def test_exit_parse_config_accepts_a_good_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_files(tmp_path, GOOD), "--exit-parse-config"]) == ExitCode.OK
    assert capsys.readouterr().out == "configuration is valid: 1 access stanza(s)\n"


def test_dump_config_shows_settings_but_never_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_files(tmp_path, GOOD), "-D"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "FIREWALL_TYPE               log" in out
    assert "Rijndael key              <32 bytes, CBC>" in out
    assert "OPEN_PORTS                tcp/22" in out
    assert KEYS.rijndael.to_base64() not in out and KEYS.hmac.to_base64() not in out


def test_key_gen_works_for_sha3_without_a_length(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-k", "--hmac-digest-type", "sha3_256"]) == ExitCode.OK
    key_line, hmac_line = capsys.readouterr().out.splitlines()
    assert len(RijndaelKey.from_base64(key_line.split(": ")[1]).secret) == 32
    hmac_key = HmacKey.from_base64(hmac_line.split(": ")[1], HmacType.SHA3_256)
    assert len(hmac_key.secret) == 128


def test_status_without_a_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_files(tmp_path, GOOD), "-S"]) == ExitCode.ERROR
    assert capsys.readouterr().out == "No running fwknopd detected.\n"


def test_a_bad_command_line_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--no-such-option"])
    assert info.value.code == ExitCode.USAGE
