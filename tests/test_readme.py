"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 - our own README


def test_readme_quick_start_has_exactly_two_commands() -> None:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = [ln for block in commands for ln in block.splitlines() if ln.strip()]
    assert [ln.split("#")[0].strip() for ln in lines] == ["./dev tui", "./dev test"]


def test_the_readme_shows_screenshots_that_exist() -> None:
    images = re.findall(r"\]\((screenshots/[^)]+\.png)\)", README.read_text())
    assert "screenshots/demo.png" in images and "screenshots/main.png" in images
    for image in images:
        assert (README.parent / image).is_file(), f"{image} is missing: run screenshots/make.py"


def test_every_scenario_has_its_screenshot() -> None:
    from tests.tui.scenarios import SCENARIOS

    shots = README.parent / "screenshots"
    for scenario in SCENARIOS:
        for name in (scenario.name, f"{scenario.name}-200x50"):  # 80x24, then 200x50
            for ext in ("svg", "png"):
                assert (shots / f"{name}.{ext}").is_file(), f"run screenshots/make.py ({name})"


def readme_fwknop_commands() -> list[str]:
    """Every ``fwknop ...`` command line of the README's shell examples (comments and
    redirections left out, continued lines joined, ``eval "$(...)"`` opened)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S):
        for written in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", written).strip()
            line = re.sub(r'^eval "\$\((.*)\)"$', r"\1", line)
            commands += [c.strip() for c in line.split(";") if c.strip().startswith("fwknop ")]
    return commands


def test_every_fwknop_command_in_the_readme_is_one_the_client_takes() -> None:
    import shlex

    from fwknop_tui.cli import _build_parser

    commands = readme_fwknop_commands()
    assert len(commands) > 20 and "fwknop ssh home -l admin -- uptime" in commands
    for command in commands:
        argv: list[str] = []
        words = iter(shlex.split(command)[1:])
        for word in words:
            if word in {"<", ">", ">>"}:
                next(words)  # the file redirected: the shell's, not the client's
            else:
                argv.append(word)
        try:
            _build_parser().parse_args(argv)
        except Exception as exc:  # the CLI's parser raises instead of exiting
            raise AssertionError(f"README: `{command}`: {exc}") from exc
