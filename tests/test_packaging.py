"""The wheel holds every module and data file of the source tree (editable installs hide gaps)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"fwknop_core": "fwknop_core", "fwknop_tui": "fwknop_tui", "server": "fwknop_server"}


@pytest.mark.slow
def test_the_wheel_has_every_module_and_data_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(tmp_path.glob("fwknop_tui-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for source, package in PACKAGES.items():
        for path in (ROOT / source).rglob("*"):
            if (
                path.suffix in (".py", ".tcss", ".typed", ".service")
                and "__pycache__" not in path.parts
            ):
                expected.add(f"{package}/{path.relative_to(ROOT / source).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
