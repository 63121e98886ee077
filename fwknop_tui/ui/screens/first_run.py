"""Shown when there are no profiles yet: try the demo, create a profile or import."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from .dialog import Dialog

__all__ = ["FirstRunScreen"]

WELCOME = """\
[b $accent]Welcome to fwknop-tui[/]

You have no profiles yet. A [b]profile[/b] is a server to knock: where it is, what \
to open, and its keys (kept in your OS keyring, never in a file).

 • [b]Demo[/b] starts our fwknopd on this machine (loopback, a firewall that only \
logs) with a profile and fresh keys, and knocks it, so you can watch a knock \
succeed. Nothing on your firewall changes.
 • [b]New profile[/b] opens the editor.
 • [b]Import[/b] reads your ~/.fwknoprc, or keys shared as text or a QR code.
"""


class FirstRunScreen(Dialog[str | None]):
    """Returns "demo", "new", "import", or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "skip", "Skip", id="first.skip", tooltip="Start with nothing"),
        Binding("d", "choose('demo')", "Demo", id="first.demo", tooltip="Watch a knock succeed"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog")

    def compose_dialog(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide"):
            yield Static(WELCOME, id="welcome")
            with Horizontal(classes="buttons"):
                yield Button("Demo", id="demo", variant="primary", compact=True)
                yield Button("New profile", id="new", compact=True)
                yield Button("Import", id="import", compact=True)
                yield Button("Skip", id="skip", compact=True)

    def on_mount(self) -> None:
        self.query_one("#demo", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "skip" else event.button.id)

    def action_choose(self, what: str) -> None:
        """Pick one."""
        self.dismiss(what)

    def action_skip(self) -> None:
        """Close."""
        self.dismiss(None)
