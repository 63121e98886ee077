"""Importing: ~/.fwknoprc stanzas, and keys shared as text (a QR code's, keygen output).

Both show a preview of what will be created before anything is written;
the import itself is the wallet's (``plan_rc_import`` / ``apply_rc_import``,
``import_share_into``), all or nothing, in a worker. Share text is typed
into a masked input and never displayed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)

from fwknop_core import HmacType, UsageError, parse_share

from ...errors import ClientError
from ...qr import decode_image
from ...wallet.profiles import Profile
from ...wallet.validate import FieldError, check_host, check_profile_name
from ..widgets.secret_input import SecretInput
from .dialog import Dialog

if TYPE_CHECKING:
    from ...wallet.rc import RcImport
    from ..app import FwknopApp

__all__ = ["ImportScreen", "describe_share"]

NEW = "__new__"


def describe_share(text: str, profile: Profile | None) -> str:
    """What a share text holds, without its values; ``UsageError`` if nothing usable."""
    mode = profile.encryption_mode if profile else Profile(name="x", host="x").encryption_mode
    kind = (profile.hmac_type if profile else None) or HmacType.SHA256
    shared = parse_share(text, mode=mode, hmac_type=kind)
    found = []
    if shared.rijndael is not None:
        how = "base64" if shared.rijndael_was_base64 else "passphrase"
        found.append(f"a Rijndael key ({how}, {len(shared.rijndael.secret)} bytes)")
    if shared.hmac is not None:
        found.append(f"an HMAC key ({len(shared.hmac.secret)} bytes)")
    return "Found " + " and ".join(found) + "."


def _status(plan: RcImport) -> str:
    """The Status cell of one stanza in the preview."""
    if plan.needs_host:
        return "needs a destination"
    if plan.profile is None:
        return "cannot import"
    return "replaces" if plan.exists else "new"


class ImportScreen(Dialog[list[str] | None]):
    """Dismisses with the names of the profiles created or given keys, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Close", id="import.close", tooltip="Import nothing"),
    ]

    def __init__(self, *, rc_path: Path | None = None, tab: str = "rc") -> None:
        super().__init__(classes="dialog large")
        self.rc_path = rc_path or Path.home() / ".fwknoprc"
        self.tab = tab
        self.plans: list[RcImport] = []
        # the share tab is built when first shown (the rc tab is the one shown first, as a
        # rule): its fields, a Select among them, were about half the dialog's opening time
        self._share_built = False

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose_dialog(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide tall"):
            yield Static("Import", classes="title")
            with TabbedContent(id="import-tabs", initial=f"tab-{self.tab}"):
                with TabPane("~/.fwknoprc", id="tab-rc"), VerticalScroll():
                    with Horizontal(classes="field"):
                        yield Label("rc file", classes="label")
                        yield Input(value=str(self.rc_path), id="rc-path", compact=True)
                        yield Button("Preview", id="rc-preview", variant="primary", compact=True)
                    with Horizontal(classes="field"):
                        yield Label("Destination", classes="label")
                        yield Input(
                            placeholder="fwknopd host for stanzas without SPA_SERVER",
                            id="rc-destination",
                            compact=True,
                        )
                    yield DataTable(id="rc-plan", cursor_type="row")
                    yield Static("", id="rc-warnings", classes="help", markup=False)
                    with Horizontal(classes="field"):
                        yield Label("Replace existing", classes="label")
                        yield Switch(value=False, id="rc-replace")
                    with Horizontal(classes="buttons"):
                        yield Button(
                            "Import", id="rc-import", variant="success", disabled=True, compact=True
                        )
                with TabPane("Share text / QR", id="tab-share"), VerticalScroll(id="share-pane"):
                    if self.tab == "share":
                        yield from self._share_rows()

    def _share_rows(self) -> list[Widget]:
        """The share tab's fields (built when the tab is first shown)."""
        self._share_built = True
        names = self.fwknop.wallet_names()
        return [
            Horizontal(
                Label("Share text", classes="label"),
                SecretInput(
                    placeholder="paste KEY_BASE64:... HMAC_KEY_BASE64:... (masked)",
                    id="share-text",
                ),
                classes="field",
            ),
            Horizontal(
                Label("or QR image", classes="label"),
                Input(
                    placeholder="path to a PNG (decoded with zbarimg)",
                    id="share-image",
                    compact=True,
                ),
                classes="field",
            ),
            Horizontal(
                Label("Into", classes="label"),
                Select(
                    [("a new profile", NEW), *((n, n) for n in names)],
                    value=NEW,
                    allow_blank=False,
                    id="share-target",
                    compact=True,
                ),
                classes="field",
            ),
            Horizontal(
                Label("New profile", classes="label"),
                Input(placeholder="name", id="share-name", compact=True),
                Input(placeholder="server host", id="share-host", compact=True),
                classes="field",
                id="share-new",
            ),
            Horizontal(
                Label("Replace keys", classes="label"),
                Switch(value=False, id="share-replace"),
                classes="field",
            ),
            Static("", id="share-preview", classes="help", markup=False),
            Horizontal(
                Button("Import keys", id="share-import", variant="success", compact=True),
                classes="buttons",
            ),
        ]

    @on(TabbedContent.TabActivated, "#import-tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-share" and not self._share_built:
            self.query_one("#share-pane", VerticalScroll).mount_all(self._share_rows())

    def on_mount(self) -> None:
        table = self.query_one("#rc-plan", DataTable)
        table.add_columns("Profile", "Stanza", "Host", "Keys", "Status")

    # -- rc -----------------------------------------------------------------------

    @on(Button.Pressed, "#rc-preview")
    @on(Input.Submitted, "#rc-path")
    @on(Input.Submitted, "#rc-destination")
    def _rc_preview(self) -> None:
        path = Path(self.query_one("#rc-path", Input).value.strip() or "~/.fwknoprc").expanduser()
        destination = self.query_one("#rc-destination", Input).value.strip() or None
        wallet = self.fwknop.wallet
        self.fwknop.background(
            lambda: wallet.plan_rc_file(path, destination=destination),
            done=self._show_plan,
            what=f"reading {path}",
            group="import",
        )

    def _show_plan(self, plans: list[RcImport]) -> None:
        self.plans = plans
        table = self.query_one("#rc-plan", DataTable)
        table.clear()
        ready = [p for p in plans if p.profile is not None]
        rows = [
            (
                p.name,
                f"[{p.stanza}] line {p.line}",
                p.profile.host if p.profile else "-",
                ", ".join(p.keys) or "none",
                _status(p),
            )
            for p in plans
        ]
        # the columns' widths now, not at the table's next idle measure: a frame drawn in
        # between would keep the header at the old widths (its render is cached)
        for i, column in enumerate(table.ordered_columns):
            widest = max((cell_len(row[i]) for row in rows), default=0)
            column.content_width = max(column.content_width, widest)
        for cells in rows:
            table.add_row(*(Text(c) for c in cells))
        warnings = [w for p in plans for w in p.warnings]
        self.query_one("#rc-warnings", Static).update(
            "\n".join(warnings) if warnings else f"{len(ready)} profile(s) ready to import."
        )
        self.query_one("#rc-import", Button).disabled = not ready

    @on(Button.Pressed, "#rc-import")
    def _rc_import(self) -> None:
        ready = [p for p in self.plans if p.profile is not None]
        replace = self.query_one("#rc-replace", Switch).value
        wallet = self.fwknop.wallet
        self.fwknop.background(
            lambda: wallet.apply_rc_import(ready, replace=replace),
            done=self.dismiss,
            what="importing the rc file",
            group="import",
        )

    # -- share text -----------------------------------------------------------------

    def _target(self) -> str | None:
        value = self.query_one("#share-target", Select).value
        return None if value == NEW else str(value)

    @on(Select.Changed, "#share-target")
    def _target_changed(self) -> None:
        self.query_one("#share-new").display = self._target() is None
        self._share_preview()

    @on(Input.Changed, "#share-text")
    def _share_preview(self) -> None:
        text = self.query_one("#share-text", SecretInput).value
        box = self.query_one("#share-preview", Static)
        if not text:
            box.update("")
            return
        target = self._target()
        try:
            profile = self.fwknop.wallet.get(target) if target else None
            box.update(describe_share(text, profile))
            box.set_class(False, "error")
        except (UsageError, ClientError) as exc:
            box.update(f"Not usable: {exc}")
            box.set_class(True, "error")

    def _new_profile(self) -> tuple[str, Profile] | None:
        name = self.query_one("#share-name", Input).value.strip()
        host = self.query_one("#share-host", Input).value.strip()
        try:
            check_profile_name(name)
            check_host("host", host)
        except FieldError as exc:
            self.query_one("#share-preview", Static).update(f"{exc.field}: {exc.message}")
            return None
        return name, Profile(name=name, host=host)

    @on(Button.Pressed, "#share-import")
    def _share_import(self) -> None:
        text = self.query_one("#share-text", SecretInput).value
        image = self.query_one("#share-image", Input).value.strip()
        target = self._target()
        create = None
        if target is None:
            made = self._new_profile()
            if made is None:
                return
            target, create = made
        replace = self.query_one("#share-replace", Switch).value
        wallet = self.fwknop.wallet
        name = target

        def work() -> list[str]:
            from ...errors import ClientUsageError  # noqa: PLC0415

            share = text
            if not share and image:
                share = decode_image(Path(image).expanduser())
            if not share:
                raise ClientUsageError("paste the share text, or give a QR image")
            wallet.import_share_into(name, share, create=create, replace=replace)
            return [name]

        self.fwknop.background(work, done=self.dismiss, what="importing keys", group="import")

    def action_cancel(self) -> None:
        """Import nothing."""
        self.dismiss(None)
