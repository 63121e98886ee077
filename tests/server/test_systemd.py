"""The shipped unit file is valid for systemd and stays hardened (systemd-analyze, offline)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "server" / "systemd" / "fwknopd.service"
MAX_EXPOSURE = 3.0  # systemd's "OK" band; a loosened unit would climb past it


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    # point ExecStart at the fwknopd of this environment, so verify can check it exists
    local = tmp_path / "fwknopd.service"
    exe = Path(sys.executable).parent / "fwknopd"
    local.write_text(UNIT.read_text().replace("/usr/local/bin/fwknopd", str(exe)))
    return local


def test_the_unit_file_verifies(unit: Path) -> None:
    res = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Type=notify" in unit.read_text()


def test_the_unit_file_is_hardened(unit: Path) -> None:
    res = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", res.stdout + res.stderr)
    assert level is not None, res.stdout + res.stderr
    assert float(level.group(1)) <= MAX_EXPOSURE
