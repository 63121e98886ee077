"""Without a syslog socket: one notice, then stderr; terminal actions print to the terminal.

Before: with no ``/dev/log`` (containers, minimal hosts) every message of a
run without ``-f`` printed Python's ``--- Logging error ---`` traceback, and
``--exit-parse-config``, ``--fw-list`` and ``--fw-flush`` sent their
warnings to syslog (or nowhere) instead of the terminal. fwknopd prints
those actions' messages on the terminal; so do we. The real daemon runs as a
subprocess in a mount namespace where the syslog socket is absent (a
``/dev/null`` bound over it, when the host has one).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest
from fwknop_server import cli
from fwknop_server.config import load_server_config

from tests.helpers.ourd import FWKNOPD, write_private

NO_SYSLOG = 'if [ -e /dev/log ]; then mount --bind /dev/null /dev/log || exit 99; fi; exec "$@"'


def _without_syslog(*args: str) -> subprocess.CompletedProcess[str]:
    """Our fwknopd with ``args``, in a mount namespace without a syslog socket."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    res = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            NO_SYSLOG,
            "sh",
            FWKNOPD,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode != 99, res.stderr
    return res


def _files(tmp_path: Path, conf_extra: str = "") -> list[str]:
    conf = write_private(
        tmp_path / "fwknopd.conf",
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nFOO_UNKNOWN bar\n{conf_extra}",
    )
    access = write_private(tmp_path / "access.conf", "SOURCE ANY\nKEY_BASE64 " + "a2V5" * 8 + "\n")
    return ["-c", str(conf), "-a", str(access)]


def _no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    both = res.stdout + res.stderr
    assert "Logging error" not in both, both
    assert "Traceback" not in both, both


def test_exit_parse_config_prints_its_warnings_on_the_terminal(tmp_path: Path) -> None:
    res = _without_syslog(*_files(tmp_path), "--exit-parse-config")
    _no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert "FOO_UNKNOWN" in res.stderr  # the warning, on the terminal
    assert "syslog" not in res.stderr  # a terminal action never tries syslog


@pytest.mark.parametrize("action", ["--fw-list", "--fw-flush", "--dump-config"])
def test_firewall_actions_print_on_the_terminal(tmp_path: Path, action: str) -> None:
    res = _without_syslog(*_files(tmp_path), action)
    _no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert "FOO_UNKNOWN" in res.stderr
    assert res.stdout.strip()


def _empty_pcap(path: Path) -> Path:
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    return path


def test_the_daemon_without_syslog_says_so_once_and_logs_to_stderr(tmp_path: Path) -> None:
    pcap = _empty_pcap(tmp_path / "empty.pcap")
    res = _without_syslog(
        *_files(tmp_path),
        "-f",
        "--syslog-enable",
        "--pcap-file",
        str(pcap),
        "--exit-after-pcap-file",
    )
    _no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("logging to stderr") == 1, res.stderr
    assert res.stderr.count("FOO_UNKNOWN") == 1, res.stderr  # once: stderr only, not twice
    assert "Shutting Down fwknopd." in res.stderr


def _setup(tmp_path: Path, *, foreground: bool) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text("SYSLOG_IDENTITY spa\n")
    args = argparse.Namespace(verbose=0, foreground=foreground, syslog_enable=foreground)
    cli._setup_logging(args, load_server_config(conf))


@pytest.fixture
def root_handlers() -> object:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield root
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = saved


def _three_messages_reach_stderr_after_one_notice(capfd: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        logging.getLogger("fwknop_server").warning("message %d", i)
    err = capfd.readouterr().err
    assert err.count("logging to stderr") == 1
    assert all(f"message {i}" in err for i in range(3))
    assert "Logging error" not in err


def test_no_syslog_socket_at_start_means_stderr_after_one_notice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    root_handlers: logging.Logger,
) -> None:
    monkeypatch.setattr(cli, "SYSLOG_SOCKET", str(tmp_path / "no-such-socket"))
    _setup(tmp_path, foreground=False)
    _three_messages_reach_stderr_after_one_notice(capfd)


def test_a_syslog_that_goes_away_means_stderr_after_one_notice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    root_handlers: logging.Logger,
) -> None:
    path = tmp_path / "log"
    monkeypatch.setattr(cli, "SYSLOG_SOCKET", str(path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslogd:
        syslogd.bind(str(path))
        syslogd.settimeout(5)
        _setup(tmp_path, foreground=False)
        logging.getLogger("fwknop_server").warning("to syslog")
        assert b"to syslog" in syslogd.recv(4096)
    path.unlink()  # syslogd is gone
    _three_messages_reach_stderr_after_one_notice(capfd)
