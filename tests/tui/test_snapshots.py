"""A snapshot of every screen (pytest-textual-snapshot); update only after looking at them.

The screens are the scenarios of ``scenarios.py`` (shared with the script
that makes ``screenshots/``), all but the live demo, whose port and
timings differ every run.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Tui
from .scenarios import SCENARIOS, Scenario, settled

FIXED = [s for s in SCENARIOS if not s.live]


@pytest.mark.parametrize("scenario", FIXED, ids=[s.name for s in FIXED])
def test_screen(snap_compare: Any, tui: Tui, scenario: Scenario) -> None:
    scenario.setup(tui)
    app = tui.app(**scenario.app_options)
    action = settled(scenario.action(tui))
    assert snap_compare(app, run_before=action, terminal_size=scenario.size)
