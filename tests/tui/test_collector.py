"""The garbage collector's schedule in ``fwknop-tui``: never while the first frame or a dialog
is being built (tests/bench/bench_tui.py measures what that saves)."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from fwknop_tui.ui.app import FwknopApp
from fwknop_tui.ui.collector import Collector
from fwknop_tui.ui.screens.dialog import Dialog
from fwknop_tui.ui.screens.editor import EditorScreen
from fwknop_tui.ui.screens.help import HelpScreen
from fwknop_tui.ui.screens.main import MainScreen

from .conftest import Tui, wait_until
from .test_flows import SIZE, add_profile


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection from now on; the collector as it was, after."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
        gc.enable()


def test_an_unmanaged_collector_leaves_the_garbage_collector_alone(
    collections: list[int],
) -> None:
    collector = Collector()
    collector.hold("dialog")
    assert gc.isenabled()
    collector.started()
    collector.release("dialog")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_holds_are_counted_and_nothing_runs_before_the_first_frame(
    collections: list[int],
) -> None:
    collector = Collector()
    collector.manage()
    collector.hold("first-run dialog")
    collector.release("first-run dialog")
    assert not gc.isenabled(), "released before the first frame"
    collector.hold("a")
    collector.started()
    assert not gc.isenabled() and gc.get_freeze_count() > 0
    collector.hold("b")
    collector.release("a")
    assert not gc.isenabled()
    collector.release("b")
    collector.release("b")  # a dialog that closes after it was drawn releases again
    assert gc.isenabled()


def building(app: FwknopApp) -> str | None:
    """What the app is building now: its first frame, a dialog not drawn yet, or nothing."""
    if not app.is_running or not app.screen_stack:
        return "the first frame"
    screen = app.screen
    if isinstance(screen, Dialog) and not screen.is_drawn:
        return type(screen).__name__
    return None


async def test_no_collection_runs_while_the_first_frame_or_a_dialog_is_built(
    tui: Tui, collections: list[int]
) -> None:
    for n in range(20):
        add_profile(tui, f"server-{n}")
    collector = Collector()
    collector.manage()
    app = tui.app(collector=collector)
    during: list[str] = []

    def watch(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start" and (what := building(app)):
            during.append(what)

    gc.callbacks.append(watch)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, gc.isenabled, what="the collector after the first frame")
            assert gc.get_freeze_count() > 0, "the start-up heap is not frozen"
            for key, screen in (("n", EditorScreen), ("e", EditorScreen), ("f1", HelpScreen)):
                await pilot.press(key)
                await wait_until(
                    pilot,
                    lambda s=screen: isinstance(app.screen, s) and app.screen.is_drawn,  # type: ignore[misc]
                    what=f"{screen.__name__} drawn",
                )
                assert gc.isenabled()
                gc.collect()  # the last dialog's garbage: not left for the next one's build
                await pilot.press("escape")
                await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
            assert gc.isenabled()
            gc.callbacks.remove(watch)  # before the app ends (its end is no frame)
    finally:
        if watch in gc.callbacks:
            gc.callbacks.remove(watch)
    assert during == [], f"collections while these were built: {Counter(during)}"
