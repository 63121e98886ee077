"""The profile editor: every field, grouped in tabs, validated as you type; keys masked.

Field widgets come from ``fields.SPECS`` and are validated by the wallet's
own checks (``check_field`` per field as it changes, ``check_profile`` for
the whole profile, cross-field rules included). Keys are typed or pasted
into masked inputs, or generated on the spot; they go to the keyring when
the profile is saved (``Wallet.save``, all or nothing, in a worker), never
into profiles.toml. The server's access.conf stanza for the draft can be
shown at any time.

A tab's fields are built the first time it is shown (``_fill``), the first
tab's just after the editor's first frame: styling and laying out a couple
of hundred widgets before anything was drawn is what made the editor take a
second to open. The name field is there from the first frame, so typing
can start at once. A field not built yet reads as the value it would show
(``_pending``, else the profile's own); ``ready`` says the first tab is up.

Problems show as the user types, keys included (a key of the wrong length
is named before Save), but a field still empty as it was when the form
opened, on a tab where nothing was changed yet, is not nagged about until
Save: a new form opens clean, and typing a name does not blame the host. Leaving
a changed form (escape, Cancel) asks first, the safe answer being to keep
editing: freshly generated keys may already be in a server's access.conf.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import AwaitMount, Widget
from textual.widgets import Button, Input, Label, Select, Static, Switch, TabbedContent, TabPane

from fwknop_core import HmacType, X25519PrivateKey, generate_keys, is_share_text

from ...errors import KeyMissingError, ProfileExistsError
from ...wallet.keys import ProfileKeys, decode_stored, stored_from_text
from ...wallet.profiles import Profile, check_profile
from ..building import unstyled
from ..fields import BY_NAME, GROUPS, SPECS, FieldSpec, display_value, raw_value
from ..validators import FieldValidator, NameValidator
from ..widgets.secret_input import SecretInput
from .dialog import Dialog
from .stanza import StanzaScreen

if TYPE_CHECKING:
    from ..app import FwknopApp

__all__ = ["EditorScreen"]

KEY_INPUTS = (
    ("rijndael", "Rijndael key", "crypto"),
    ("hmac", "HMAC key", "crypto"),
    ("x25519", "X25519 key", "crypto"),
    ("gpg-signing-pw", "Signing passphrase", "gnupg"),
)


# crypto rows that mean nothing for one kind of encryption, hidden while it is chosen (their
# values stay in the form): x25519 has no cipher mode, inner digest, HMAC or shared key (the
# AEAD authenticates), and the others have no server public key or x25519 key
X25519_ONLY = frozenset({"server_public_key", "x25519"})
NOT_X25519 = frozenset(
    {
        "encryption_mode",
        "digest_type",
        "hmac_type",
        "key_format",
        "hmac_key_command",
        "hmac_key_file",
        "rijndael",
        "hmac",
    }
)


class FieldPane(VerticalScroll, can_focus=False):
    """A tab's fields; not a stop of its own in the focus chain (tab goes field to field)."""


def _group_of(field: str) -> str:
    """The tab a field or key input is on (the name is on none: its own)."""
    if field in BY_NAME:
        return BY_NAME[field].group
    return next((g for slot, _label, g in KEY_INPUTS if slot == field), field)


def _widget_id(name: str) -> str:
    return f"f-{name}"


class EditorScreen(Dialog[str | None]):
    """Edits a profile (or a new one); dismisses with the saved profile's name, or None."""

    BINDINGS = [  # noqa: RUF012
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Save the profile and keys"),
        Binding("escape", "cancel", "Cancel", id="editor.cancel", tooltip="Leave without saving"),
        Binding(
            "ctrl+g", "generate", "Generate keys", id="editor.generate", tooltip="New random keys"
        ),
        Binding(
            "ctrl+t", "stanza", "Server stanza", id="editor.stanza", tooltip="access.conf for it"
        ),
    ]

    DRAWN_ON_MOUNT = False  # drawn once the first tab's fields are up (_first_tab)

    def __init__(self, profile: Profile | None = None, *, template: Profile | None = None) -> None:
        super().__init__(classes="dialog large")
        self.original = profile
        self.template = template or profile
        self._initial: dict[str, Any] = {}
        self._tried_save = False
        self._filled: set[str] = set()  # tabs whose fields are built
        self.ready = False  # the first tab's fields are mounted
        self._pending: dict[str, Any] = {}  # values set for fields not built yet
        # the widgets by field, as built: a query walks the whole form, and a check of the
        # form reads every field
        self._controls: dict[str, Any] = {}
        self._helps: dict[str, Static] = {}
        self._rows: dict[str, Horizontal] = {}
        self._mounting: list[AwaitMount] = []  # each tab's mount, awaited before leaving
        self._check_due = False
        self._said: dict[str, str] = {}  # what each field's help line says now
        self._clash: tuple[str, str] | None = None  # a name the save found taken, and why

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    # -- layout ---------------------------------------------------------------

    def _control(self, spec: FieldSpec) -> Any:
        shown = self._pending.pop(spec.name, display_value(spec, self.template))
        wid = _widget_id(spec.name)
        control: Any
        if spec.kind == "bool":
            control = Switch(value=bool(shown), id=wid)
        elif spec.kind == "choice":
            options = [(label, value) for value, label in spec.choices]
            control = Select(options, value=shown, allow_blank=False, id=wid, compact=True)
        else:
            control = Input(
                value=shown,
                validators=[FieldValidator(spec.name)],
                id=wid,
                valid_empty=spec.name != "host",
                compact=True,
            )
        self._controls[spec.name] = control
        return control

    def _row(self, name: str, label: str, control: Widget, help_text: str) -> Horizontal:
        self._controls.setdefault(name, control)
        self._helps[name] = Static(help_text, classes="help", id=f"h-{name}", markup=False)
        self._rows[name] = Horizontal(
            Label(label, classes="label"),
            Vertical(control, self._helps[name], classes="control"),
            classes="field",
            id=f"row-{name}",
        )
        return self._rows[name]

    def _show_rows(self) -> None:
        """Show the crypto rows that apply to the encryption chosen, hide the others."""
        x25519 = self._value(BY_NAME["encryption"]) == "x25519"
        for name in X25519_ONLY | NOT_X25519:
            row = self._rows.get(name)
            if row is not None:
                row.display = x25519 == (name in X25519_ONLY)

    def _group_rows(self, group: str) -> list[Widget]:
        """The widgets of one tab's fields."""
        keep = "leave empty to keep the stored key" if self.original else ""
        rows: list[Widget] = [
            self._row(spec.name, spec.label, self._control(spec), spec.help)
            for spec in SPECS
            if spec.group == group
        ]
        for slot, key_label, key_group in KEY_INPUTS:
            if key_group == group:
                hint = keep or "paste a key, a passphrase or share text"
                box = SecretInput(placeholder=hint, id=f"k-{slot}")
                box.value = self._pending.pop(slot, "")
                rows.append(
                    self._row(
                        slot, key_label, box, "masked; stored in the OS keyring when you save"
                    )
                )
        if group == "crypto":
            rows.append(
                Horizontal(
                    Button("Generate keys", id="generate", compact=True),
                    Button("Server stanza", id="stanza", compact=True),
                    classes="buttons left",
                )
            )
        return rows

    def compose_dialog(self) -> ComposeResult:
        title = f"Edit {self.original.name}" if self.original else "New profile"
        name = self.original.name if self.original else ""
        with Vertical(classes="dialog-box editor"):
            yield Static(title, classes="title")
            yield self._row(
                "name",
                "Name",
                Input(
                    value=name,
                    placeholder="home, lab, vps-1 ...",
                    validators=[NameValidator()],
                    id=_widget_id("name"),
                    compact=True,
                ),
                "letters, digits, '.', '_' and '-'",
            )
            with TabbedContent(id="groups"):
                for group, label in GROUPS:
                    with TabPane(label, id=f"tab-{group}"):
                        yield FieldPane(id=f"pane-{group}")
            yield Static("", id="problems", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def _fill(self, group: str) -> AwaitMount | None:
        """Build a tab's fields the first time it is shown (an awaitable for the mount)."""
        if group in self._filled:
            return None
        self._filled.add(group)
        rows = unstyled(self.app, lambda: self._group_rows(group))
        self._show_rows()
        mounted = self.query_one(f"#pane-{group}", FieldPane).mount_all(rows)
        self._mounting.append(mounted)
        self.call_after_refresh(self._check)
        return mounted

    @on(TabbedContent.TabActivated, "#groups")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        pane_id = event.pane.id or ""
        self._fill(pane_id.removeprefix("tab-"))

    async def show_group(self, group: str) -> None:
        """Show a tab, its fields built and mounted."""
        self.query_one("#groups", TabbedContent).active = f"tab-{group}"
        mounted = self._fill(group)
        if mounted is not None:
            await mounted

    def on_mount(self) -> None:
        self._initial = self._form()
        self.query_one(f"#{_widget_id('name')}", Input).focus()
        self.call_after_refresh(self._first_tab)

    async def _first_tab(self) -> None:
        """After the first frame: the first tab's fields, then the focus and the check."""
        if not self.is_attached:  # closed before its first tab was built
            return
        await self.show_group(GROUPS[0][0])
        if not self.is_attached:
            return
        if self.original is not None:
            self._controls["host"].focus()
        self.ready = True
        self._check()
        self.call_after_refresh(self.drawn)

    # -- reading the form -------------------------------------------------------

    def _value(self, spec: FieldSpec) -> Any:
        widget = self._controls.get(spec.name)
        if widget is None or (isinstance(widget, Select) and widget.is_blank()):
            # its tab is not up yet (a Select has no value until it has been mounted)
            return self._pending.get(spec.name, display_value(spec, self.template))
        if isinstance(widget, Switch | Input):
            return widget.value
        if isinstance(widget, Select):
            return widget.value
        raise TypeError(spec.name)

    def _form(self) -> dict[str, Any]:
        """What every field and key input holds now."""
        form: dict[str, Any] = {s.name: self._value(s) for s in SPECS}
        form["name"] = self._controls["name"].value
        for slot, _label, _group in KEY_INPUTS:
            form[slot] = self._key_text(slot)
        return form

    @property
    def changed(self) -> bool:
        """Whether the form differs from what it opened with.

        Before the first tab's fields are up only the name can have been typed: its
        widgets, half mounted, are not asked (a Select has no value until mounted).
        """
        if not self._initial:
            return False
        if not self.ready:
            return bool(self._controls["name"].value != self._initial["name"])
        return self._form() != self._initial

    def _untouched_and_empty(self, field: str, form: dict[str, Any]) -> bool:
        """Empty as the form opened, on a tab the user has not changed anything on yet."""
        value = form.get(field)
        if value not in ("", None) or value != self._initial.get(field):
            return False
        tab = _group_of(field)
        return all(form[f] == self._initial.get(f) for f in form if _group_of(f) == tab)

    def _profile_name(self) -> str:
        return str(self._controls["name"].value).strip()

    def draft(self) -> tuple[Profile | None, list[tuple[str, str]]]:
        """The profile the form describes, or every problem with it."""
        table = {s.name: raw_value(s, self._value(s)) for s in SPECS}
        return check_profile(self._profile_name(), table)

    def _key_text(self, slot: str) -> str:
        box = self._controls.get(slot)
        if box is None:  # its tab has not been shown yet
            return str(self._pending.get(slot, ""))
        return str(box.value)

    def _keys(self, profile: Profile) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Stored values of the keys entered, and problems with them."""
        stored: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for slot, _label, _group in KEY_INPUTS:
            text = self._key_text(slot)
            if not text:
                continue
            if slot not in profile.key_slots():
                problems.append((slot, "this profile does not use this key: clear it"))
                continue
            try:
                stored[slot] = stored_from_text(slot, text, profile)
            except KeyMissingError as exc:
                problems.append((slot, str(exc).split(": ", 1)[-1]))
        # share text pasted as the Rijndael key may carry the HMAC key too
        first = self._key_text("rijndael")
        if "hmac" not in stored and "hmac" in profile.key_slots() and is_share_text(first):
            with contextlib.suppress(KeyMissingError):
                stored["hmac"] = stored_from_text("hmac", first, profile)
        return stored, problems

    # -- showing problems ---------------------------------------------------------

    def _show(self, field: str, message: str | None) -> None:
        spec = BY_NAME.get(field)
        help_text = spec.help if spec else "masked; stored in the OS keyring when you save"
        if field == "name":
            help_text = "letters, digits, '.', '_' and '-'"
        box = self._helps.get(field)
        if box is None:  # a field without a row, or on a tab not shown yet
            return
        text = message or help_text
        if self._said.get(field) != text:  # an update costs a layout: only when it changed
            self._said[field] = text
            box.update(text)
            box.set_class(bool(message), "error")

    def _crypto_draft(self) -> Profile | None:
        """The draft as far as its keys are concerned: a missing name or host does not stop
        a key check or key generation (the crypto settings are what matter)."""
        table = {s.name: raw_value(s, self._value(s)) for s in SPECS}
        table["host"] = table["host"] or "draft.invalid"
        profile, _problems = check_profile(self._profile_name() or "draft", table)
        return profile

    def _key_problems(self, profile: Profile | None) -> list[tuple[str, str]]:
        """Problems with the keys entered (an empty host does not hide a key too long)."""
        profile = profile or self._crypto_draft()
        return [] if profile is None else self._keys(profile)[1]

    def _check(self) -> Profile | None:
        """Validate the whole form, keys included; show the problems; the profile if good.

        A field still empty as the form opened is not blamed until Save is tried. A check
        that comes after the editor closed (due when escape was pressed) does nothing.
        """
        if not self.is_attached:
            return None
        self._show_rows()
        profile, problems = self.draft()
        problems += self._key_problems(profile)
        if self._clash is not None and self._clash[0] == self._profile_name():
            problems.append(("name", self._clash[1]))
        all_problems = list(problems)
        if not self._tried_save:
            form = self._form()
            problems = [(f, m) for f, m in problems if not self._untouched_and_empty(f, form)]
        shown = {f for f, _ in problems}
        for spec in SPECS:
            if spec.name not in shown:
                self._show(spec.name, None)
        for slot, _l, _g in KEY_INPUTS:
            if slot not in shown:
                self._show(slot, None)
        if "name" not in shown:
            self._show("name", None)
        for field, message in problems:
            self._show(field, message)
        summary = self.query_one("#problems", Static)
        summary.update("; ".join(f"{f}: {m}" for f, m in problems))
        summary.set_class(bool(problems), "error")
        summary.display = bool(problems)
        return profile if not all_problems else None

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _changed(self) -> None:
        # one check per frame, however many fields changed (a mount changes them all)
        if not self._check_due:
            self._check_due = True
            self.call_after_refresh(self._deferred_check)

    def _deferred_check(self) -> None:
        self._check_due = False
        self._check()

    # -- actions ------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        """Validate everything, then save profile and keys in a worker."""
        self._tried_save = True
        profile = self._check()
        if profile is None:
            self._focus_problem()
            return
        wallet = self.fwknop.wallet
        old = self.original.name if self.original else None
        stored, _ = self._keys(profile)

        def failed(exc: BaseException) -> None:
            if isinstance(exc, ProfileExistsError):
                # kept until the name changes: a check of the form must not wipe it
                self._clash = (profile.name, str(exc))
                self._check()

        self.fwknop.background(
            lambda: wallet.save(profile, old_name=old, keys=stored),
            done=lambda _none: self.dismiss(profile.name),
            failed=failed,
            what=f"saving {profile.name}",
            group="wallet",
        )

    def _focus_problem(self) -> None:
        profile, problems = self.draft()
        if profile is not None:
            problems = self._keys(profile)[1]
        if not problems:
            return
        field = problems[0][0]
        group = BY_NAME[field].group if field in BY_NAME else None
        if group is None:
            group = next((g for s, _l, g in KEY_INPUTS if s == field), None)
        with_id = f"#{_widget_id(field)}" if field in BY_NAME or field == "name" else f"#k-{field}"

        async def focus() -> None:
            if group is not None:
                await self.show_group(group)
            self.query_one(with_id).focus()

        self.call_later(focus)

    @on(Button.Pressed, "#cancel")
    async def action_cancel(self) -> None:
        """Leave without saving; a changed form asks first (the default keeps editing)."""
        for pending in self._mounting:
            # a tab's fields still being mounted are mounted first: a Select removed half
            # mounted ends the app (Textual's Select looks for its overlay as it mounts)
            await pending
        if not self.changed:
            self.dismiss(None)
            return
        keys = any(self._key_text(slot) for slot, _l, _g in KEY_INPUTS)
        what = "this profile" if self.original is None else self.original.name
        question = f"Throw away your changes to {what}?"
        if keys:
            question += (
                " The keys in the form are lost with them: a server that already has their "
                "stanza cannot be knocked without them."
            )

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        from .confirm import ConfirmScreen  # noqa: PLC0415

        self.app.push_screen(
            ConfirmScreen(question, yes="Discard", no="Keep editing", danger=True), answered
        )

    @on(Button.Pressed, "#generate")
    async def action_generate(self) -> None:
        """Fill the key inputs with new random keys (saved with the profile), on show."""
        profile = self._crypto_draft()
        if profile is None:
            self.notify("Fix the problems first: the keys depend on the crypto settings.")
            return
        if profile.uses_gpg:
            self.notify("A GnuPG profile has no shared key to generate.", severity="warning")
            return
        await self.show_group("crypto")
        if profile.uses_x25519:
            key = X25519PrivateKey.generate()
            self.query_one("#k-x25519", SecretInput).value = key.to_text()
            self.notify(
                "A new x25519 key is in the form (masked). Save stores it in the keyring; the "
                "server's access.conf needs its public key (Server stanza), which is not secret.",
                title="Key generated",
            )
            return
        fresh = generate_keys(profile.hmac_type or HmacType.SHA256, mode=profile.encryption_mode)
        self.query_one(f"#{_widget_id('key_format')}", Select).value = "base64"
        self.query_one("#k-rijndael", SecretInput).value = fresh.rijndael.to_base64()
        self.query_one("#k-hmac", SecretInput).value = (
            fresh.hmac.to_base64() if profile.hmac_type else ""
        )
        self.notify(
            "New keys are in the form (masked). Save stores them in the keyring; the server "
            "needs the new stanza (Server stanza).",
            title="Keys generated",
        )

    @on(Button.Pressed, "#stanza")
    def action_stanza(self) -> None:
        """Show the server's access.conf stanza for the draft."""
        self._tried_save = True  # the stanza needs the whole profile: name what is missing
        profile = self._check()
        if profile is None:
            self.notify("Fix the problems first.", severity="warning")
            return
        stored, _ = self._keys(profile)
        try:
            entered = {
                slot: decode_stored(slot, value, profile)
                for slot, value in stored.items()
                if slot in ("rijndael", "hmac", "x25519")
            }
        except KeyMissingError as exc:
            self.notify(str(exc), severity="error")
            return
        wallet = self.fwknop.wallet

        def stanza() -> str:
            from ...wallet.rc import access_stanza  # noqa: PLC0415

            have = ProfileKeys()
            if self.original is not None and len(entered) < len(profile.key_slots()):
                try:
                    have = wallet.keys(self.original)
                except KeyMissingError:
                    have = ProfileKeys()
            keys = ProfileKeys(
                rijndael=entered.get("rijndael", have.rijndael),  # type: ignore[arg-type]
                hmac=entered.get("hmac", have.hmac),  # type: ignore[arg-type]
                x25519=entered.get("x25519", have.x25519),  # type: ignore[arg-type]
            )
            return access_stanza(profile, keys)

        self.fwknop.background(
            stanza,
            done=lambda text: self.app.push_screen(
                StanzaScreen(f"access.conf stanza for {profile.name}", text, profile=profile.name)
            ),
            what="building the server stanza",
            group="wallet",
        )
