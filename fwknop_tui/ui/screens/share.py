"""Sharing a profile's keys: the Fwknop2-format QR code, after a warning, with PNG/SVG export.

An x25519 profile shares its public key instead (the server's
``CLIENT_PUBLIC_KEY`` line): no warning, a note that it is harmless.

The share text is read (keyring) in a worker only once the user has said
"show it", lives in this screen alone, and is never logged or displayed as
text: only the QR code is drawn, in fixed black on white so a phone can
scan it off any theme. Exports are written 0600. The screen is ``SECRET``:
the app takes no screenshot of it.

The code takes 27 lines for a base64 key pair (``qr``: level L, a 2-module
quiet zone). Where the terminal is shorter it scrolls, and a line above it
says how many rows the terminal needs and offers the PNG; the actions stay
on screen at every size, each with its key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical, VerticalScroll
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
PUBLIC_HINT = "For the server's administrator: the line to add to the access.conf stanza."
SCAN_HINT = "Fwknop2: profile editor, scan QR. fwknop-gui and `fwknop import-share` read it too."


class QrScroll(VerticalScroll):
    """The code's scroll area: tells its screen when its size is known or changes."""

    def on_resize(self, _event: events.Resize) -> None:
        """Say again whether the code fits."""
        screen = self.screen
        if isinstance(screen, ShareScreen):
            screen.fit()


class ShareScreen(Dialog[None]):
    """Warns, then shows the QR code of a profile's keys (Fwknop2 / fwknop-gui format)."""

    SECRET = True
    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "Close", id="share.close", tooltip="Back (forgets the keys)"),
        Binding("p", "save('png')", "Save PNG", id="share.png", tooltip="The code as a PNG (0600)"),
        Binding(
            "v", "save('svg')", "Save SVG", id="share.svg", tooltip="The code as an SVG (0600)"
        ),
    ]

    def __init__(self, profile: str, *, public: bool = False) -> None:
        super().__init__(classes="dialog large")
        self.profile = profile
        self.public = public  # an x25519 profile: the QR holds its public key, no secret
        self._text: str | None = None
        self.rows_needed: int | None = None  # terminal rows the whole code needs, when cut

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose_dialog(self) -> ComposeResult:
        with Vertical(classes="dialog-box share", id="share-box"):
            if self.public:
                yield Static(f"Share the public key of {self.profile}", classes="title")
                yield Static(PUBLIC_SHARE_NOTE, classes="help", id="share-warning")
            else:
                yield Static(f"Share the keys of {self.profile}", classes="title")
                yield Static(SHARE_WARNING, classes="warning", id="share-warning")
            with Horizontal(classes="buttons", id="reveal-buttons"):
                yield Button(
                    "Show the QR code",
                    id="show",
                    variant="primary" if self.public else "warning",
                    compact=True,
                )
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#show", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The save keys exist once the code is shown."""
        if action == "save":
            return self._text is not None
        return True

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
        self.query_one("#share-warning", Static).update(
            PUBLIC_HINT
            if self.public
            else "Anyone who sees this code can knock your server. " + SCAN_HINT
        )
        box = self.query_one("#share-box")
        box.add_class("revealed")
        default = f"~/{self.profile}-{'public-key' if self.public else 'keys'}.png"  # expanded
        box.mount(
            Static("", id="qr-fit", classes="warning"),
            QrScroll(Center(QrCode(text, id="qr")), id="qr-scroll"),
            Horizontal(
                Input(value=default, id="export-path", compact=True),
                Button("Save PNG (p)", id="png", compact=True),
                Button("Save SVG (v)", id="svg", compact=True),
                Button("Close (esc)", id="close", variant="primary", compact=True),
                id="export-row",
            ),
        )
        self.refresh_bindings()
        self.call_after_refresh(lambda: self.query_one("#close", Button).focus())

    def fit(self) -> None:
        """Show how many rows (and columns) the terminal needs when the code is cut."""
        from ...qr import terminal_lines  # noqa: PLC0415

        qr = self.query_one(QrCode)
        scroll = self.query_one("#qr-scroll")
        notice = self.query_one("#qr-fit", Static)
        lines, columns = terminal_lines(qr.modules), qr.modules
        shown_rows = scroll.scrollable_content_region.height
        shown_columns = scroll.scrollable_content_region.width
        if not shown_rows or not shown_columns:  # not laid out yet: its resize comes
            return
        notice_rows = notice.outer_size.height if notice.display else 0
        if lines <= shown_rows + notice_rows and columns <= shown_columns:
            self.rows_needed = None
            notice.display = False
            return
        screen = self.app.size
        self.rows_needed = screen.height - shown_rows - notice_rows + lines
        need_columns = screen.width + max(0, columns - shown_columns)
        notice.update(
            f"The whole code needs a terminal of {self.rows_needed} rows and {need_columns} "
            f"columns (this one is {screen.height}x{screen.width}): enlarge it or zoom out, "
            "scroll it, or save a PNG (p) and show that."
        )
        notice.display = True

    @on(Button.Pressed, "#png")
    @on(Button.Pressed, "#svg")
    def _export(self, event: Button.Pressed) -> None:
        self.action_save(event.button.id or "png")

    def action_save(self, kind: str) -> None:
        """Write the code to the file named in the path field (PNG or SVG, mode 0600)."""
        from ... import qr  # noqa: PLC0415

        text = self._text
        if text is None:
            return
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
