"""Run the atheris fuzz target for a bounded number of inputs (CI runs this)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("FWKNOP_FUZZ_RUNS", "60000"))


def _fuzz(tmp_path: Path, target: str, max_len: int) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    res = subprocess.run(
        [
            sys.executable,
            str(HERE / target),
            f"-runs={RUNS}",
            f"-max_len={max_len}",
            "-seed=1",
            "-timeout=10",
            "-rss_limit_mb=2048",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=tmp_path,
    )
    tail = (res.stdout + res.stderr)[-4000:]
    assert res.returncode == 0, tail
    assert f"Done {RUNS} runs" in res.stderr, tail


@pytest.mark.slow
def test_fuzz_open_packet_for_a_bounded_run(tmp_path: Path) -> None:
    _fuzz(tmp_path, "fuzz_open.py", 1600)


@pytest.mark.slow
def test_fuzz_knock_collector_for_a_bounded_run(tmp_path: Path) -> None:
    """Random knocks from many sources: no exception, state within its bounds."""
    _fuzz(tmp_path, "fuzz_knock.py", 4096)
