"""A yes/no question."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from .dialog import Dialog

__all__ = ["ConfirmScreen"]


class ConfirmScreen(Dialog[bool]):
    """Asks a question; dismisses with True (yes) or False."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "no", "Cancel", id="confirm.cancel", tooltip="Do nothing"),
        Binding("y", "yes", "Yes", id="confirm.yes", tooltip="Go ahead"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", danger: bool = False) -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.yes_label = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(
                    self.yes_label,
                    id="yes",
                    variant="error" if self.danger else "primary",
                    compact=True,
                )
                yield Button("Cancel", id="no", compact=True)

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        """Answer yes."""
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        """Answer no."""
        self.dismiss(False)
