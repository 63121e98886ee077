"""Launch-to-first-screen time of ``fwknop-tui``, next to a bare ``import textual.app``.

    python tests/bench/bench_tui.py [--runs N] [--profiles N]

Each run starts a whole process on a pseudo-terminal (80x24), as a user's
terminal would, and times it from the start to the moment its first full
frame is on the terminal (the header's title and the footer's last key
have both been written): ``fwknop-tui`` (with ``FWKNOP_TUI_EXIT_WHEN_READY``
set, so that it quits afterwards), against ``python -c "import
textual.app"`` to its exit, and, to calibrate, a one-widget Textual app to
its first frame. All use the virtualenv's interpreter and compiled bytecode
(a private, warmed ``PYTHONPYCACHEPREFIX``), in a private config directory
holding N profiles and a knock history. Best and median of N runs
(interleaved); goal: fwknop-tui <= 1.5x the bare import. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.terminal import run_on_pty

GOAL = 1.5
BIN = Path(sys.executable).parent


HELLO = (
    "from textual.app import App\nfrom textual.widgets import Static\n"
    "class Hello(App):\n"
    "    def compose(self):\n        yield Static('hello, first frame')\n"
    "    def on_mount(self):\n        self.call_after_refresh(self.exit)\n"
    "Hello().run()\n"
)
MARKERS = {
    "bare": (),
    "hello": (b"hello, first frame",),
    "ours": (b"Single Packet Authorization", b"palette"),
}


def _run_on_pty(argv: list[str], env: dict[str, str], until: tuple[bytes, ...] = ()) -> float:
    code, took, _out = run_on_pty(argv, env, until=until)
    if code != 0:
        raise RuntimeError(f"{argv} exited with {code}")
    return took


def _setup(root: Path, profiles: int) -> None:
    from fwknop_tui.history import KnockHistory, KnockRecord
    from fwknop_tui.wallet.profiles import Profile, ProfileStore

    store = ProfileStore(root / "config" / "profiles.toml")
    store.save_many(
        [
            Profile.from_table(f"server-{n}", {"host": f"198.51.100.{n % 250 + 1}"})
            for n in range(profiles)
        ]
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
        commands = {
            "bare": [sys.executable, "-c", "import textual.app"],
            "hello": [sys.executable, "-c", HELLO],
            "ours": [str(BIN / "fwknop-tui")],
        }
        for key, argv in commands.items():  # warm the bytecode cache
            _run_on_pty(argv, env, MARKERS[key])
        results: dict[str, list[float]] = {key: [] for key in commands}
        for _ in range(args.runs):  # interleaved, so drift hits all alike
            for key, argv in commands.items():
                results[key].append(_run_on_pty(argv, env, MARKERS[key]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base_best = min(results["bare"])
    base_median = statistics.median(results["bare"])
    print(f"{'command':<38}{'best ms':>9}{'median ms':>11}{'x bare':>8}")
    rows = (
        ('python -c "import textual.app"', "bare"),
        ("one-Static Textual app, first frame", "hello"),
        ("fwknop-tui, first full frame", "ours"),
    )
    for label, key in rows:
        best, median = min(results[key]), statistics.median(results[key])
        print(f"{label:<38}{best * 1000:>9.1f}{median * 1000:>11.1f}{median / base_median:>8.2f}")
    ratio = statistics.median(results["ours"]) / base_median
    verdict = "met" if ratio <= GOAL else "missed"
    print(
        f"goal: fwknop-tui <= {GOAL}x the bare import (medians): {verdict} ({ratio:.2f}x; "
        f"best-to-best {min(results['ours']) / base_best:.2f}x)"
    )
    print(
        f"({args.runs} runs, {args.profiles} profiles; cpus: {os.cpu_count()}, "
        f"load: {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
