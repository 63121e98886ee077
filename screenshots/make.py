"""Make screenshots/ from the running app: an SVG and a PNG of every screen.

    python screenshots/make.py [--out DIR] [--only NAME ...]

Each scenario of ``tests/tui/scenarios.py`` (the same ones the snapshot
tests pin) runs the real app headless under Textual's Pilot, at 80x24
(``NAME.svg``/``NAME.png``: every screen must work in a classic terminal)
and at 200x50 (``NAME-200x50.*``), in a private config directory with an
in-memory keyring; the app saves its own SVG screenshot, and cairosvg
renders the PNG (with Fira Code, Debian's
fonts-firacode, the font Textual's SVGs name). The demo scenario starts our
fwknopd on loopback and shows its knock succeeding. Keys in these images
are fake (all zero bytes) or thrown away with the demo; the stanza stays
masked. ``index.md`` lists the images with their titles.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.tui.conftest import Tui  # noqa: E402
from tests.tui.scenarios import SCENARIOS, Scenario, hold_cursors, settled  # noqa: E402


def image_name(scenario: Scenario, size: tuple[int, int]) -> str:
    """``NAME`` at 80x24 (the one the README shows first), ``NAME-WxH`` otherwise."""
    return scenario.name if size == (80, 24) else f"{scenario.name}-{size[0]}x{size[1]}"


async def _shoot(scenario: Scenario, size: tuple[int, int], out: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"shot-{scenario.name}-"))
    os.environ["FWKNOP_TUI_CONFIG_DIR"] = str(root / "config")
    tui = Tui(root)
    scenario.setup(tui)
    app = tui.app(**scenario.app_options)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await settled(scenario.action(tui))(pilot)
        svg = out / f"{image_name(scenario, size)}.svg"
        svg.write_text(app.export_screenshot(), encoding="utf-8")
    return svg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--only", nargs="*", metavar="NAME", help="just these scenarios")
    args = parser.parse_args()
    import cairosvg  # noqa: PLC0415 - a test extra; the script fails clearly without it

    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    hold_cursors()
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    for scenario in chosen:
        for size in scenario.sizes:
            svg = asyncio.run(_shoot(scenario, size, args.out))
            png = svg.with_suffix(".png")
            cairosvg.svg2png(url=str(svg), write_to=str(png))
            print(f"{png.name}: {scenario.title}")
    if not args.only:
        made = "Made by `python screenshots/make.py` from the running app; never edited by hand."
        lines = ["# Screenshots", "", made, "Each screen at 80x24, then at 200x50.", ""]
        for s in chosen:
            lines.append(f"## {s.title}\n")
            lines += [f"![{s.title}, {w}x{h}]({image_name(s, (w, h))}.png)\n" for w, h in s.sizes]
        (args.out / "index.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
