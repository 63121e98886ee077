"""Make screenshots/ from the running app: an SVG and a PNG of every screen.

    python screenshots/make.py [--out DIR] [--only NAME ...]

Each scenario of ``tests/tui/scenarios.py`` (the same ones the snapshot
tests pin) runs the real app headless under Textual's Pilot, in a private
config directory with an in-memory keyring; the app saves its own SVG
screenshot, and cairosvg renders the PNG (with Fira Code, Debian's
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


async def _shoot(scenario: Scenario, out: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"shot-{scenario.name}-"))
    os.environ["FWKNOP_TUI_CONFIG_DIR"] = str(root / "config")
    tui = Tui(root)
    scenario.setup(tui)
    app = tui.app(**scenario.app_options)
    async with app.run_test(size=scenario.size) as pilot:
        await pilot.pause()
        await settled(scenario.action(tui))(pilot)
        svg = out / f"{scenario.name}.svg"
        app.save_screenshot(filename=svg.name, path=str(out))
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
        svg = asyncio.run(_shoot(scenario, args.out))
        png = svg.with_suffix(".png")
        cairosvg.svg2png(url=str(svg), write_to=str(png))
        print(f"{png.name}: {scenario.title}")
    if not args.only:
        made = "Made by `python screenshots/make.py` from the running app; never edited by hand."
        lines = ["# Screenshots", "", made, ""]
        lines += [f"## {s.title}\n\n![{s.title}]({s.name}.png)\n" for s in chosen]
        (args.out / "index.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
