"""Launch-to-first-screen time of ``fwknop-tui``, next to a bare ``import textual.app``.

    python tests/bench/bench_tui.py [--runs N] [--profiles N]

Each run starts a whole process on a pseudo-terminal (80x24), as a user's
terminal would: ``fwknop-tui`` with ``FWKNOP_TUI_EXIT_WHEN_READY`` set, so
it quits as soon as the main screen has read the profiles and drawn its
first frame, against ``python -c "import textual.app"``. Both use the
virtualenv's interpreter and compiled bytecode (a private, warmed
``PYTHONPYCACHEPREFIX``), in a private config directory holding N profiles
and a knock history. Best and median of N runs; goal: fwknop-tui <= 1.5x
the bare import. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.5
BIN = Path(sys.executable).parent


def _run_on_pty(argv: list[str], env: dict[str, str], timeout: float = 60.0) -> float:
    """Seconds from start to exit of ``argv`` with a terminal for stdin/stdout/stderr."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    deadline = start + timeout
    try:
        while proc.poll() is None:
            if time.perf_counter() > deadline:
                proc.kill()
                raise RuntimeError(f"{argv[0]} did not exit within {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 65536)  # keep the terminal drained
                except OSError:
                    pass
        took = time.perf_counter() - start
    finally:
        os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited with {proc.returncode}")
    return took


def _setup(root: Path, profiles: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from fwknop_tui.history import KnockHistory, KnockRecord
    from fwknop_tui.wallet.profiles import Profile, ProfileStore

    store = ProfileStore(root / "config" / "profiles.toml")
    store.save_many(
        [Profile.from_table(f"server-{n}", {"host": f"198.51.100.{n % 250 + 1}"})
         for n in range(profiles)]  # fmt: skip
    )
    history = KnockHistory(root / "config" / "state" / "history.jsonl")
    for n in range(profiles):
        history.append(KnockRecord(f"server-{n}", time.time() - n, True, 0.01, "sent", ()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--profiles", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    try:
        _setup(root, args.profiles)
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            FWKNOP_TUI_CONFIG_DIR=str(root / "config"),
            HOME=str(root / "home"),
            XDG_CACHE_HOME=str(root / "cache"),
            PYTHONPYCACHEPREFIX=str(root / "pycache"),
            TERM="xterm-256color",
            COLUMNS="80",
            LINES="24",
        )
        env["FWKNOP_TUI_EXIT_WHEN_READY"] = "1"
        bare = [sys.executable, "-c", "import textual.app"]
        ours = [str(BIN / "fwknop-tui")]
        for argv in (bare, ours):  # warm the bytecode cache
            _run_on_pty(argv, env)
        results: dict[str, list[float]] = {"bare": [], "ours": []}
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            results["bare"].append(_run_on_pty(bare, env))
            results["ours"].append(_run_on_pty(ours, env))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base_best = min(results["bare"])
    base_median = statistics.median(results["bare"])
    print(f"{'command':<38}{'best ms':>9}{'median ms':>11}{'x bare':>8}")
    for label, key in (('python -c "import textual.app"', "bare"), ("fwknop-tui to first screen", "ours")):
        best, median = min(results[key]), statistics.median(results[key])
        print(f"{label:<38}{best * 1000:>9.1f}{median * 1000:>11.1f}{median / base_median:>8.2f}")
    ratio = statistics.median(results["ours"]) / base_median
    verdict = "met" if ratio <= GOAL else "missed"
    print(f"goal: fwknop-tui <= {GOAL}x the bare import (medians): {verdict} ({ratio:.2f}x; "
          f"best-to-best {min(results['ours']) / base_best:.2f}x)")  # fmt: skip
    print(f"({args.runs} runs, {args.profiles} profiles; cpus: {os.cpu_count()}, "
          f"load: {os.getloadavg()[0]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
