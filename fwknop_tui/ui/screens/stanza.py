"""The server side of a profile: the access.conf stanza, masked until revealed."""

from __future__ import annotations

import re

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from .dialog import Dialog

__all__ = ["StanzaScreen", "holds_secrets", "mask_keys"]

# a line naming a secret key; public keys (CLIENT_PUBLIC_KEY) are not masked
_KEY_LINE = re.compile(r"^(\s*(?!\S*PUBLIC_KEY)\S*KEY\S*\s+)(\S+)\s*$", re.MULTILINE)

WARNING = (
    "This stanza holds the profile's keys. Add it to the server's access.conf over a "
    "private channel (ssh, a password manager), never by mail or chat."
)
PUBLIC_NOTE = (
    "This stanza holds only public keys: nothing in it is secret, so it can go to the "
    "server's administrator any way you like."
)


def mask_keys(text: str) -> str:
    """The stanza with every secret key value replaced by dots."""
    return _KEY_LINE.sub(lambda m: m.group(1) + "•" * 16, text)


def holds_secrets(text: str) -> bool:
    """Whether the stanza holds any secret key (else there is nothing to mask)."""
    return _KEY_LINE.search(text) is not None


class StanzaScreen(Dialog[None]):
    """Shows a stanza for copying; keys stay hidden until Reveal."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "Close", id="stanza.close", tooltip="Back"),
        Binding("r", "reveal", "Reveal", id="stanza.reveal", tooltip="Show the keys"),
        Binding("c", "copy", "Copy", id="stanza.copy", tooltip="Copy the stanza"),
    ]

    def __init__(self, title: str, stanza: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.stanza = stanza
        self.revealed = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide"):
            yield Static(self.title_text, classes="title")
            secret = holds_secrets(self.stanza)
            yield Static(
                WARNING if secret else PUBLIC_NOTE, classes="warning" if secret else "help"
            )
            yield Static(mask_keys(self.stanza), id="stanza-text", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Copy", id="copy", variant="primary", compact=True)
                yield Button("Reveal", id="reveal", compact=True, disabled=not secret)
                yield Button("Close", id="close", compact=True)

    @on(Button.Pressed, "#reveal")
    def action_reveal(self) -> None:
        """Show (or hide again) the keys."""
        self.revealed = not self.revealed
        shown = self.stanza if self.revealed else mask_keys(self.stanza)
        self.query_one("#stanza-text", Static).update(shown)
        self.query_one("#reveal", Button).label = "Hide" if self.revealed else "Reveal"

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        """Copy the whole stanza (keys included) to the clipboard."""
        self.app.copy_to_clipboard(self.stanza)
        held = "it holds the keys" if holds_secrets(self.stanza) else "public keys only"
        self.notify(f"Stanza copied ({held}).", title="Copied")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to where we were."""
        self.dismiss(None)
