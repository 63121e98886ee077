"""fwknopd's actions that run and exit (config checks, the dump with no key in it, key
generation), and where it logs."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path

import pytest
from fwknop_server import cli
from fwknop_server.cli import ExitCode, main
from fwknop_server.config import load_server_config

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


def test_exit_parse_config_checks_both_files_and_says_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad fwknopd.conf hides nothing of access.conf; warnings reach the terminal too."""
    args = _files(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\nOPEN_PORTS tcp/22, ftp/21, udp/x\n",
    )
    conf = Path(args[1])
    conf.write_text(
        conf.read_text() + "FLUX_CAPACITOR 88\nMAX_SPA_PACKET_AGE soon\nFIREWALL_TYPE ipf\n"
    )
    assert main([*args, "--exit-parse-config"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert f"{conf}:3: ignoring FLUX_CAPACITOR (unknown)" in err
    assert f"{conf}:4: MAX_SPA_PACKET_AGE must be a number from 1 to 100000, not 'soon'" in err
    assert f"{conf}:5: FIREWALL_TYPE 'ipf' is not a firewall type" in err
    assert "access.conf:3: OPEN_PORTS: 'ftp/21' is not proto/port; 'udp/x' is not proto/port" in err


def test_exit_parse_config_accepts_a_good_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_files(tmp_path, GOOD), "--exit-parse-config"]) == ExitCode.OK
    out = capsys.readouterr()
    assert out.out == "configuration is valid: 1 access stanza(s)\n"
    assert out.err.endswith("Configs parsed, exiting.\n")  # fwknopd's words, where it says them


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


@pytest.mark.parametrize("foreground", [True, False])
def test_logging_goes_to_stderr_in_the_foreground_and_to_syslog_otherwise(
    foreground: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "log")
    monkeypatch.setattr(cli, "SYSLOG_SOCKET", path)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    conf = tmp_path / "fwknopd.conf"
    conf.write_text("SYSLOG_IDENTITY spa\nSYSLOG_FACILITY LOG_LOCAL3\n")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslogd:
        syslogd.bind(path)
        syslogd.settimeout(5)
        args = argparse.Namespace(verbose=0, foreground=foreground, syslog_enable=False)
        try:
            cli._setup_logging(args, load_server_config(conf))
            kinds = {type(h).__name__ for h in root.handlers}
            logging.getLogger("fwknop_server.refused").warning("refused from 198.18.0.2")
        finally:
            for handler in root.handlers:
                handler.close()
            root.handlers[:], root.level = saved
        if foreground:
            assert kinds == {"StreamHandler"}
            return
        assert kinds == {"_Syslog"}  # a SysLogHandler that falls back to stderr
        # <PRI>: LOG_LOCAL3 (19) * 8 + warning (4); the ident as fwknopd's, with our pid
        expected = f"<156>spa[{os.getpid()}]: refused from 198.18.0.2\x00"
        assert syslogd.recv(4096) == expected.encode()
