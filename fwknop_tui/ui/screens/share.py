"""Sharing a profile's keys: the Fwknop2-format QR code, after a warning, with PNG/SVG export.

An x25519 profile shares its public key instead (the server's
``CLIENT_PUBLIC_KEY`` line): no warning, a note that it is harmless.

The share text is read (keyring) in a worker only once the user has said
"show it", lives in this screen alone, and is never logged or displayed as
text: only the QR code is drawn, in fixed black on white so a phone can
scan it off any theme. Exports are written 0600.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.widgets import Button, Input, Static

from ..widgets.qr_code import QrCode
from .dialog import Dialog

if TYPE_CHECKING:
    from ..app import FwknopApp

__all__ = ["PUBLIC_SHARE_NOTE", "SHARE_WARNING", "ShareScreen"]

SHARE_WARNING = (
    "The QR code holds this profile's keys. Anyone who scans or photographs it can "
    "knock your server. Show it only where nobody else can see the screen, and do not "
    "save the image anywhere it could be read by others."
)
PUBLIC_SHARE_NOTE = (
    "This x25519 profile shares only its public key: the CLIENT_PUBLIC_KEY line for the "
    "server's access.conf. Nothing in it is secret, so sharing it is harmless; the private "
    "key never leaves the keyring."
)


class ShareScreen(Dialog[None]):
    """Warns, then shows the QR code of a profile's keys (Fwknop2 / fwknop-gui format)."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "Close", id="share.close", tooltip="Back (forgets the keys)"),
    ]

    def __init__(self, profile: str, *, public: bool = False) -> None:
        super().__init__(classes="dialog")
        self.profile = profile
        self.public = public  # an x25519 profile: the QR holds its public key, no secret
        self._text: str | None = None

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide tall", id="share-box"):
            if self.public:
                yield Static(f"Share the public key of {self.profile}", classes="title")
                yield Static(PUBLIC_SHARE_NOTE, classes="help")
            else:
                yield Static(f"Share the keys of {self.profile}", classes="title")
                yield Static(SHARE_WARNING, classes="warning")
            with Horizontal(classes="buttons", id="reveal-buttons"):
                yield Button(
                    "Show the QR code",
                    id="show",
                    variant="primary" if self.public else "warning",
                    compact=True,
                )
                yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed, "#show")
    def _show(self) -> None:
        wallet = self.fwknop.wallet
        self.fwknop.background(
            lambda: wallet.share_text(self.profile),
            done=self._reveal,
            what=f"reading the keys of {self.profile}",
            group="wallet",
        )

    def _reveal(self, text: str) -> None:
        self._text = text
        self.query_one("#reveal-buttons").remove()
        box = self.query_one("#share-box")
        default = f"~/{self.profile}-{'public-key' if self.public else 'keys'}.png"  # expanded
        box.mount(
            Center(QrCode(text, id="qr")),
            Static(
                "For the server's administrator: the line to add to the access.conf stanza."
                if self.public
                else "Fwknop2: profile editor → scan QR. fwknop-gui and `fwknop import-share` "
                "read it too.",
                classes="help",
            ),
            Horizontal(
                Input(value=default, id="export-path", compact=True),
                Button("Save PNG", id="png", compact=True),
                Button("Save SVG", id="svg", compact=True),
                Button("Close", id="close", variant="primary", compact=True),
                id="export-row",
            ),
        )

    @on(Button.Pressed, "#png")
    @on(Button.Pressed, "#svg")
    def _export(self, event: Button.Pressed) -> None:
        from ... import qr  # noqa: PLC0415

        text = self._text
        if text is None:
            return
        kind = event.button.id or "png"
        raw = self.query_one("#export-path", Input).value.strip()
        path = Path(raw or f"{self.profile}-keys.{kind}").expanduser()
        if path.suffix.lower() != f".{kind}":
            path = path.with_suffix(f".{kind}")
        writer = qr.write_png if kind == "png" else qr.write_svg
        self.fwknop.background(
            lambda: writer(text, path),
            done=lambda _none: self.notify(
                f"Wrote {path} (mode 0600"
                + ("; a public key, safe to share)." if self.public else ": it is a key)."),
                title="Saved",
            ),
            what=f"writing {path}",
            group="export",
        )

    @on(Button.Pressed, "#cancel")
    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back; the share text is dropped with the screen."""
        self._text = None
        self.dismiss(None)
