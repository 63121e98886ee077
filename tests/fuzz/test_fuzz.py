"""Run each atheris fuzz target for a bounded number of inputs (CI runs this).

Inputs that long runs found are kept in ``seeds/TARGET/`` and run first.
``FWKNOP_FUZZ_RUNS`` sets the count of the packet opener and the knock collector (and half of
it the server's pipeline's); a longer run of any target outside CI is
``python tests/fuzz/fuzz_X.py -runs=N dir/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("FWKNOP_FUZZ_RUNS", "60000"))
# target -> (runs, max_len): the packet opener, the server's pipeline and the knock collector
# are fast; the client's parsers and the server's (a pair of files per input) are slower
TARGETS = {
    "fuzz_open": (RUNS, 1600),
    "fuzz_knock": (RUNS, 4096),
    "fuzz_profiles": (10000, 2000),
    "fuzz_rc": (10000, 2000),
    "fuzz_share": (20000, 1000),
    "fuzz_server": (RUNS // 2, 2000),
    "fuzz_config": (5000, 2000),
}


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_for_a_bounded_run(target: str, tmp_path: Path) -> None:
    runs, max_len = TARGETS[target]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # inputs long runs found (seeds/TARGET/): run first, every time
    for seed in sorted((HERE / "seeds" / target).glob("*")):
        shutil.copy(seed, corpus / seed.name)
    res = subprocess.run(
        [
            sys.executable,
            str(HERE / f"{target}.py"),
            f"-runs={runs}",
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
    assert f"Done {runs} runs" in res.stderr, tail
