"""Asks for the address to allow, for a profile whose allow IP is ``ask``."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Static

from fwknop_core import UsageError, validate_ipv4

from .dialog import Dialog

__all__ = ["AskAllowIpScreen"]


class _Ipv4(Validator):
    def validate(self, value: str) -> ValidationResult:
        try:
            validate_ipv4(value.strip())
        except UsageError as exc:
            return self.failure(str(exc))
        return self.success()


class AskAllowIpScreen(Dialog[str | None]):
    """Returns the IPv4 address to put in the packet, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Cancel", id="ask.cancel", tooltip="Do not knock"),
    ]

    def __init__(self, profile: str) -> None:
        super().__init__(classes="dialog")
        self.profile = profile

    def compose_dialog(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(f"Which IPv4 address should {self.profile} open the port for?")
            yield Input(
                placeholder="e.g. 203.0.113.7", id="address", validators=[_Ipv4()], compact=True
            )
            yield Static("", id="address-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Knock", id="ok", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        box = self.query_one("#address", Input)
        result = box.validate(box.value)
        if result is not None and not result.is_valid:
            self.query_one("#address-error", Static).update("; ".join(result.failure_descriptions))
            return
        self.dismiss(box.value.strip())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Do not knock."""
        self.dismiss(None)
