"""The server side of a profile: the access.conf stanza, masked until revealed.

Key lines never wrap (a key broken over two lines, copied with the mouse,
makes a broken access.conf): the stanza scrolls sideways instead. Copying
goes through the terminal (OSC 52), which some terminals ignore and tmux
drops unless ``set-clipboard`` is on; nothing tells the app whether it
worked, so the message says what was sent and where it may not arrive, and
the stanza can be written to a file (0600) instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.widgets import Button, Input, Static

from .dialog import Dialog

if TYPE_CHECKING:
    from ..app import FwknopApp

__all__ = ["StanzaScreen", "clipboard_note", "holds_secrets", "mask_keys"]

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


def clipboard_note(
    environ: dict[str, str] | os._Environ[str] = os.environ, *, secret: bool = True
) -> str:
    """What copying did, honestly: the terminal was asked, which may have ignored it."""
    held = "keys included" if secret else "public keys only"
    said = f"Sent the stanza ({held}) to the terminal's clipboard (OSC 52). "
    if environ.get("TMUX"):
        return said + (
            "tmux passes it on only with `set -g set-clipboard on`: if paste gives nothing, "
            "write it to a file (w)."
        )
    return said + "Not every terminal accepts that: if paste gives nothing, write it to a file (w)."


class StanzaScreen(Dialog[None]):
    """Shows a stanza for copying; keys stay hidden until Reveal."""

    SECRET = True
    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "Close", id="stanza.close", tooltip="Back"),
        Binding("r", "reveal", "Reveal", id="stanza.reveal", tooltip="Show (or hide) the keys"),
        Binding("c", "copy", "Copy", id="stanza.copy", tooltip="Copy through the terminal"),
        Binding("w", "write", "Write file", id="stanza.write", tooltip="Write it to a 0600 file"),
    ]

    def __init__(self, title: str, stanza: str, *, profile: str = "profile") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.stanza = stanza
        self.profile = profile
        self.revealed = False

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose_dialog(self) -> ComposeResult:
        secret = holds_secrets(self.stanza)
        with Vertical(classes="dialog-box wide"):
            yield Static(self.title_text, classes="title")
            yield Static(
                WARNING if secret else PUBLIC_NOTE, classes="warning" if secret else "help"
            )
            with ScrollableContainer(id="stanza-scroll"):
                yield Static(mask_keys(self.stanza), id="stanza-text", markup=False)
            with Horizontal(id="stanza-file", classes="field"):
                yield Input(value=f"~/{self.profile}-access.conf", id="stanza-path", compact=True)
                yield Button("Write file (w)", id="write", compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Copy (c)", id="copy", variant="primary", compact=True)
                yield Button("Reveal (r)", id="reveal", compact=True, disabled=not secret)
                yield Button("Close", id="close", compact=True)

    @on(Button.Pressed, "#reveal")
    def action_reveal(self) -> None:
        """Show (or hide again) the keys."""
        if not holds_secrets(self.stanza):
            return
        self.revealed = not self.revealed
        shown = self.stanza if self.revealed else mask_keys(self.stanza)
        self.query_one("#stanza-text", Static).update(shown)
        self.query_one("#reveal", Button).label = "Hide (r)" if self.revealed else "Reveal (r)"

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        """Send the whole stanza (keys included) to the terminal's clipboard, and say so."""
        self.app.copy_to_clipboard(self.stanza)
        self.notify(clipboard_note(secret=holds_secrets(self.stanza)), title="Copy", timeout=10)

    @on(Button.Pressed, "#write")
    @on(Input.Submitted, "#stanza-path")
    def action_write(self) -> None:
        """Write the stanza to the file named in the path field, mode 0600."""
        from ...wallet.profiles import atomic_write  # noqa: PLC0415

        raw = self.query_one("#stanza-path", Input).value.strip()
        path = Path(raw or f"{self.profile}-access.conf").expanduser()
        data = self.stanza.encode()
        self.fwknop.background(
            lambda: atomic_write(path, data, private=True),
            done=lambda _none: self.notify(
                f"Wrote {path} (mode 0600: it holds the keys).", title="Written"
            ),
            what=f"writing {path}",
            group="export",
        )

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to where we were."""
        self.dismiss(None)
