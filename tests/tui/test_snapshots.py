"""A snapshot of every screen at 80x24 and 200x50 (pytest-textual-snapshot).

Update them only after looking at them (``screenshots/make.py`` renders the
same scenarios to PNG). The screens are the scenarios of ``scenarios.py``,
all but the live demo, whose port and timings differ every run.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Tui
from .scenarios import SCENARIOS, Scenario, settled

CASES = [(s, size) for s in SCENARIOS if not s.live for size in s.sizes]


@pytest.mark.parametrize(
    ("scenario", "size"), CASES, ids=[f"{s.name}-{w}x{h}" for s, (w, h) in CASES]
)
def test_screen(snap_compare: Any, tui: Tui, scenario: Scenario, size: tuple[int, int]) -> None:
    scenario.setup(tui)
    app = tui.app(**scenario.app_options)
    action = settled(scenario.action(tui))
    assert snap_compare(app, run_before=action, terminal_size=size)
