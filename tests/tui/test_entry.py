"""The commands that start the TUI, and the script that makes screenshots/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.terminal import run_on_pty

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FWKNOP_TUI_EXIT_WHEN_READY"}
    return env | {
        "FWKNOP_TUI_CONFIG_DIR": str(tmp_path / "config"),
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
    }


@pytest.mark.parametrize("argv", [["fwknop-tui"], ["fwknop"]])
def test_on_a_terminal_the_tui_opens(argv: list[str], tmp_path: Path) -> None:
    env = _env(tmp_path) | {"FWKNOP_TUI_EXIT_WHEN_READY": "1"}
    code, _took, out = run_on_pty([str(BIN / argv[0]), *argv[1:]], env, timeout=120)
    assert code == 0, out.decode(errors="replace")[-2000:]
    assert b"\x1b[?1049h" in out, "no alternate screen: the TUI did not start"
    text = re.sub(rb"\x1b\[[0-9;?<>=$]*[a-zA-Z~]|\x1b\][^\x07]*\x07", b"", out).decode(
        errors="replace"
    )
    assert "fwknop-tui — Single Packet Authorization" in text


def test_without_a_terminal_fwknop_prints_help(tmp_path: Path) -> None:
    res = subprocess.run(
        [str(BIN / "fwknop")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 0
    assert "usage: fwknop" in res.stdout
    assert "\x1b[" not in res.stdout


@pytest.mark.slow
def test_the_screenshot_script_makes_svg_and_png(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "screenshots" / "make.py"),
            "--out",
            str(tmp_path),
            "--only",
            "main",
            "share-qr",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    for name in ("main", "share-qr"):
        assert (tmp_path / f"{name}.svg").read_text().lstrip().startswith("<svg")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
