"""TUI tests: a private config directory, an in-memory keyring, a still cursor, a fixed clock.

``tui`` builds an app on those; ``wait_until`` lets a Pilot test wait for a
worker (keyring, sending, the demo server) without sleeping a fixed time.
Pilot itself waits for the app's message queues, not for a quiet CPU
(``tests/helpers/pilot.py``): keys pressed one after the other reach the
widget the previous ones gave the focus to, on a loaded machine too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from fwknop_tui.history import KnockHistory
from fwknop_tui.ui.app import FwknopApp
from fwknop_tui.ui.settings import Settings
from fwknop_tui.wallet import Wallet
from fwknop_tui.wallet.profiles import ProfileStore
from fwknop_tui.wallet.secrets import MemoryStore
from tests.helpers.environment import private_client_env
from tests.helpers.pilot import use_settled_idle
from tests.helpers.wait import DEADLINE

# 2026-11-30 12:00:00 UTC: snapshots show times relative to this
FIXED_NOW = 1796040000.0


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = FIXED_NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Tui:
    """What a TUI test works with."""

    root: Path
    secrets: MemoryStore = field(default_factory=MemoryStore)
    clock: Clock = field(default_factory=Clock)

    @property
    def wallet(self) -> Wallet:
        return Wallet(ProfileStore(self.root / "config" / "profiles.toml"), self.secrets)

    @property
    def history(self) -> KnockHistory:
        return KnockHistory(self.root / "state" / "history.jsonl")

    def app(self, **kwargs: Any) -> FwknopApp:
        kwargs.setdefault("settings", Settings(path=self.root / "config" / "tui.toml"))
        kwargs.setdefault("first_run", False)
        return FwknopApp(wallet=self.wallet, history=self.history, clock=self.clock, **kwargs)


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary config directory and HOME; never the real keyring; times in UTC."""
    config = private_client_env(tmp_path, monkeypatch)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield config
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def settled_pilot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pilot waits until the app has handled what it was sent (see tests/helpers/pilot.py)."""
    use_settled_idle(monkeypatch)


@pytest.fixture(autouse=True)
def still_cursor() -> Iterator[None]:
    """Inputs do not blink, so snapshots do not depend on when they are taken."""
    from .scenarios import hold_cursors

    before = hold_cursors()
    yield
    Input.cursor_blink = before  # type: ignore[assignment]


@pytest.fixture
def tui(tmp_path: Path) -> Tui:
    """A private wallet, history and clock for one test."""
    return Tui(tmp_path)


async def wait_until(
    pilot: Pilot[Any], check: Callable[[], object], *, timeout: float = DEADLINE, what: str = ""
) -> None:
    """Let the app run until ``check()`` is true (workers finish in their own threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


Waiter = Callable[[Pilot[Any], Callable[[], object]], Awaitable[None]]


def notices(app: Any) -> list[str]:
    """The notifications ``app`` shows now, as "title: message" (an event to wait for)."""
    return [f"{n.title}: {n.message}" for n in app._notifications]


def palette_choice(app: Any) -> str | None:
    """The command the open palette has highlighted, once its search is over (else None)."""
    from textual.command import CommandList, CommandPalette

    screen = app.screen
    if not isinstance(screen, CommandPalette) or any(w.node is screen for w in app.workers):
        return None
    listing = screen.query_one(CommandList)
    if listing.highlighted is None:
        return None
    option = listing.get_option_at_index(listing.highlighted)
    hit = getattr(option, "hit", None)
    return str(getattr(hit, "text", None) or option.prompt)


def text_of(widget: Any, width: int = 200) -> str:
    """The plain text a Static shows (Rich renderables and Textual content alike)."""
    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    if hasattr(content, "plain"):
        return str(content.plain)
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


async def press_button(pilot: Pilot[Any], selector: str) -> None:
    """Press a button once the screen has settled (a click can miss a widget still moving)."""
    from textual.widgets import Button

    await pilot.pause()
    await wait_until(pilot, lambda: pilot.app.screen.query(selector), what=selector)
    pilot.app.screen.query_one(selector, Button).press()
    await pilot.pause()
