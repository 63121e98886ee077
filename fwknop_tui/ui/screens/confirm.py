"""A yes/no question whose default (enter) is the safe answer."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from .dialog import Dialog

__all__ = ["ConfirmScreen"]


class ConfirmScreen(Dialog[bool]):
    """Asks a question; dismisses with True (yes) or False.

    Every question this app asks is about something that cannot be undone
    (delete, replace the keys, throw away a draft), so the focus starts on
    the safe answer: enter keeps things as they are, ``y`` or a click goes
    ahead.
    """

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "no", "Cancel", id="confirm.cancel", tooltip="Do nothing"),
        Binding("y", "yes", "Yes", id="confirm.yes", tooltip="Go ahead"),
    ]

    def __init__(
        self, question: str, *, yes: str = "Yes", no: str = "Cancel", danger: bool = False
    ) -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.yes_label = yes
        self.no_label = no
        self.danger = danger

    def compose_dialog(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(
                    f"{self.yes_label} (y)",
                    id="yes",
                    variant="error" if self.danger else "primary",
                    compact=True,
                )
                yield Button(self.no_label, id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        """Answer yes."""
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        """Answer no."""
        self.dismiss(False)
