"""The main screen: the profile list, the selected profile, its knock, and the knock log.

Knocks run in thread workers (one group per profile, so keep-open knocks of
several profiles overlap but a profile never knocks twice at once); their
stages arrive as ``StageDone`` messages and the end as the worker's result.
The profiles file is read on the UI thread: it is a small local file and
reading it costs well under a millisecond; everything that may block
(keyring, DNS, sending, probing) is in a worker.

Whatever the terminal's size, the status line above the footer says how
the last knock ended and when each keep-open profile knocks next; a
profiles.toml that cannot be used keeps a banner at the top (file:line)
until it is fixed and read again (ctrl+r).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from ...errors import ClientError
from ...history import KnockRecord, StageRecord
from ...wallet.profiles import Profile
from .. import glyphs
from ..knocking import KnockOutcome, advice, expected_stages, run_knock
from ..layout import size_classes, width_class
from ..widgets.key_footer import KeyFooter
from ..widgets.knock_log import KnockLog, LogEntry, local_times
from ..widgets.knock_view import KnockState, KnockView
from ..widgets.profile_detail import ProfileDetail
from ..widgets.profile_table import ProfileRow, ProfileTable, ago, matches
from ..widgets.status_line import StatusLine

if TYPE_CHECKING:
    from ..app import FwknopApp

# The modal screens are imported when first opened (``_screens``), not at start-up:
# the help screen alone pulls in a Markdown parser.

__all__ = ["MainScreen", "keep_open_interval"]

DEFAULT_TIMEOUT = 30  # fwknopd's FW_ACCESS_TIMEOUT default


def _screens() -> Any:
    """The modal screens, imported on first use."""
    from . import modals  # noqa: PLC0415

    return modals


def keep_open_interval(profile: Profile) -> int:
    """Seconds between keep-open knocks: the profile's, else 80% of the port's lifetime."""
    if profile.keep_open:
        return profile.keep_open
    return max(5, int((profile.client_timeout or DEFAULT_TIMEOUT) * 0.8))


def _home_as_tilde(text: str) -> str:
    """Paths under the home directory written from ``~``: shorter, and the same for everyone."""
    home = str(Path.home())
    return text.replace(home + "/", "~/") if home != "/" else text


def _outcome_line(name: str, state: KnockState, now: float) -> Text:
    """``✓ home 12:00:03 (5s ago): Knocked in 51 ms: ...``, or that it is still knocking."""
    if state.running:
        doing = f"knocking, {state.progress_text}" if state.progress_text else "knocking"
        return Text.assemble(("… ", "bold cyan"), (name, "bold"), ": ", doing)
    mark, style = (glyphs.OK, "bold green") if state.ok else (glyphs.FAIL, "bold red")
    when = state.when if state.when is not None else now
    stamp = time.strftime("%H:%M:%S", time.localtime(when))
    return Text.assemble(
        (mark, style),
        " ",
        (name, "bold"),
        (f" {stamp} ({ago(now - when)} ago): ", "dim"),
        (state.outcome, "" if state.ok else "red"),
    )


def _log_entry(record: KnockRecord) -> LogEntry:
    """A knock as a line of the log."""
    mark = glyphs.OK if record.ok else glyphs.FAIL
    return LogEntry(
        record.when,
        f"{mark} {record.profile}: {record.summary} ({record.seconds * 1000:.0f} ms)",
        not record.ok,
    )


class MainScreen(Screen[None]):
    """Profiles on the left, the selected one and its knock on the right, the log below."""

    BINDINGS = [  # noqa: RUF012
        Binding("k", "knock", "Knock", id="knock", tooltip="Send the SPA packet (also enter)"),
        Binding("n", "new", "New", id="new", tooltip="Create a profile"),
        Binding("e", "edit", "Edit", id="edit", tooltip="Edit the selected profile"),
        Binding(
            "delete",
            "delete",
            "Delete",
            id="delete",
            tooltip="Delete the selected profile",
            show=False,
        ),
        Binding("s", "share", "Share", id="share", tooltip="Show the keys as a QR code"),
        Binding("i", "import", "Import", id="import", tooltip="Import ~/.fwknoprc or share text"),
        Binding(
            "g",
            "keygen",
            "Keygen",
            id="keygen",
            tooltip="New keys for the selected profile",
            show=False,
        ),
        Binding("o", "keep_open", "Keep open", id="keep_open", tooltip="Re-knock until stopped"),
        Binding(
            "t",
            "stanza",
            "Stanza",
            id="stanza",
            tooltip="The server's access.conf stanza",
            show=False,
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="filter",
            tooltip="Filter the profile list",
            show=False,
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear",
            show=False,
            id="clear_filter",
            tooltip="Clear the filter",
        ),
        Binding(
            "ctrl+r",
            "reload",
            "Reload",
            show=False,
            id="reload",
            tooltip="Read profiles.toml again (after fixing it by hand)",
        ),
    ]

    @dataclass
    class StageDone(Message):
        """A knock stage finished (posted from the worker thread)."""

        profile: str
        stage: StageRecord

    @dataclass
    class KnockProgress(Message):
        """Another knock of a sequence went out (posted from the worker thread)."""

        profile: str
        sent: int
        total: int

    def __init__(self) -> None:
        size = self.app.size
        super().__init__(classes=size_classes(size.width, size.height))  # styled once, not twice
        self.profiles: dict[str, Profile] = {}
        self.last: dict[str, KnockRecord] = {}
        self.states: dict[str, KnockState] = {}
        self.keep_open: dict[str, float] = {}  # profile -> when the next knock is due
        self.running: set[str] = set()
        self.cancels: dict[str, threading.Event] = {}
        self.problems: list[str] = []
        self.latest: str | None = None  # the profile knocked last in this session
        self._demo_mark = 0
        self._earlier: list[KnockRecord] | None = None  # read at start, logged after the frame

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon="»")
        yield Static("", id="banner", markup=False)
        with Horizontal(id="body"):
            with Vertical(id="profiles-pane"):
                yield Input(placeholder="Filter profiles (/)", id="filter")
                yield ProfileTable(id="profiles")
            with VerticalScroll(id="side"):
                yield ProfileDetail(id="detail")
                yield KnockView(id="knock")
        yield KnockLog(id="log")
        yield StatusLine(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#profiles-pane").border_title = "Profiles"
        self.query_one("#side").border_title = "Knock"
        self.query_one("#log").border_title = "Log"
        self.sub_title = "Single Packet Authorization"
        self.query_one(ProfileTable).set_layout(width_class(self.app.size.width), 0.0)
        self.reload()
        self.call_after_refresh(self._backfill_log)
        self.query_one(ProfileTable).focus()
        self.set_interval(1.0, self._tick)
        self.fwknop.main_ready(self)

    # -- profiles -------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        """Read the profiles file (and the history) again and redraw the list."""
        app = self.fwknop
        self.profiles = {}
        self.problems = []
        try:
            good, bad = app.wallet.profiles.load()
            self.problems = [str(exc) for exc in bad]
        except ClientError as exc:  # the file cannot be read or is not TOML
            good, self.problems = [], [str(exc)]
        self.problems = [_home_as_tilde(p) for p in self.problems]
        self.profiles = {p.name: p for p in good}
        for problem in self.problems:
            self.log_line(f"profiles.toml: {problem}", error=True)
        self._show_banner()
        records = app.history.load()
        self.last = {r.profile: r for r in records}
        if self._earlier is None:  # the log shows the last knocks of earlier sessions
            self._earlier = records[-50:]
        self.keep_open = {n: t for n, t in self.keep_open.items() if n in self.profiles}
        self._redraw(select)

    def _show_banner(self) -> None:
        banner = self.query_one("#banner", Static)
        banner.display = bool(self.problems)
        if self.problems:
            more = (
                f" (and {len(self.problems) - 1} more: see the log)"
                if len(self.problems) > 1
                else ""
            )
            kept = "left as it is" if not self.profiles else "its other profiles are usable"
            banner.update(
                f"{glyphs.FAIL} {self.problems[0]}{more}. The file is {kept}: fix it, then "
                "ctrl+r reads it again."
            )

    def action_reload(self) -> None:
        """Read profiles.toml again."""
        self.reload(select=self.selected.name if self.selected else None)
        if not self.problems:
            self.log_line(f"profiles.toml read again: {len(self.profiles)} profile(s)")

    def _rows(self) -> list[ProfileRow]:
        query = self.query_one("#filter", Input).value
        now = self.fwknop.clock()
        return [
            ProfileRow(
                p,
                self.last.get(p.name),
                (self.keep_open[p.name] - now) if p.name in self.keep_open else None,
                p.name in self.running,
            )
            for p in self.profiles.values()
            if matches(p, query)
        ]

    def _redraw(self, select: str | None = None) -> None:
        table = self.query_one(ProfileTable)
        table.show(self._rows(), self.fwknop.clock(), select=select)
        shown, total = table.row_count, len(self.profiles)
        pane = self.query_one("#profiles-pane")
        pane.border_subtitle = f"{shown} of {total}" if shown != total else f"{total}"
        self._show_selected()
        self._show_status()

    def _row(self, name: str) -> ProfileRow | None:
        p = self.profiles.get(name)
        if p is None:
            return None
        now = self.fwknop.clock()
        due = self.keep_open.get(name)
        return ProfileRow(
            p, self.last.get(name), None if due is None else due - now, name in self.running
        )

    @property
    def selected(self) -> Profile | None:
        """The profile under the cursor."""
        name = self.query_one(ProfileTable).selected_name
        return self.profiles.get(name) if name else None

    def _show_selected(self) -> None:
        profile = self.selected
        self.query_one(ProfileDetail).show(profile)
        view = self.query_one(KnockView)
        if profile is None:
            hint = "No profiles yet: n creates one, i imports, ctrl+p finds everything."
            if self.problems:
                hint = "profiles.toml cannot be used: the banner above says where and why."
            view.show(None, empty=hint if not self.profiles else "")
            return
        state = self.states.get(profile.name)
        if state is None and profile.name in self.last:
            record = self.last[profile.name]
            hint = "" if record.ok else advice(None, record, profile)
            state = KnockState.of_record(record, hint)
        view.show(state, empty="Not knocked yet: press k or enter.")

    @on(DataTable.RowHighlighted, "#profiles")
    def _highlighted(self) -> None:
        self._show_selected()

    @on(DataTable.RowSelected, "#profiles")
    def _selected(self) -> None:
        self.action_knock()

    @on(Input.Changed, "#filter")
    def _filtered(self) -> None:
        self._redraw()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(ProfileTable).focus()

    def action_filter(self) -> None:
        """Focus the filter."""
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        """Clear the filter and go back to the list."""
        box = self.query_one("#filter", Input)
        if box.value:
            box.value = ""
        self.query_one(ProfileTable).focus()

    # -- the log --------------------------------------------------------------------

    def log_line(self, text: str, *, error: bool = False, when: float | None = None) -> None:
        """One line in the log pane, with the (local) time."""
        entry = LogEntry(when or self.fwknop.clock(), text, error)
        self.query_one(KnockLog).add(entry)

    def _backfill_log(self) -> None:
        """The last knocks of earlier sessions (after the first frame: start-up stays quick),
        as read with the profiles, rendered in one go."""
        self.query_one(KnockLog).add_many([_log_entry(r) for r in self._earlier or ()])

    def _log_record(self, record: KnockRecord) -> None:
        self.query_one(KnockLog).add(_log_entry(record))

    # -- knocking -------------------------------------------------------------------

    def action_knock(self, name: str | None = None) -> None:
        """Knock the selected profile (asking for the address first if it says ``ask``)."""
        profile = self.profiles.get(name) if name else self.selected
        if profile is None:
            self.notify("Select a profile first (or n to create one).")
            return
        if profile.allow_ip == "ask":

            def answered(address: str | None) -> None:
                if address:
                    self.knock(profile, allow_ip=address)

            self.app.push_screen(_screens().AskAllowIpScreen(profile.name), answered)
            return
        self.knock(profile)

    def knock(self, profile: Profile, *, allow_ip: str | None = None) -> None:
        """Start a knock in a worker."""
        name = profile.name
        if name in self.running:
            self.notify(f"{name} is already knocking.")
            return
        app = self.fwknop
        demo = app.demo_for(profile)
        if demo is None and self._dead_demo(profile):
            return
        self.running.add(name)
        self.latest = name
        cancel = threading.Event()
        self.cancels[name] = cancel
        self.states[name] = KnockState(
            name, expected_stages(profile, demo=demo is not None), when=app.clock()
        )
        self._refresh_row(name)
        self.log_line(f"… {name}: knocking {profile.host}")

        def work() -> KnockOutcome:
            return run_knock(
                profile,
                app.wallet,
                app.history,
                on_stage=lambda stage: self.post_message(self.StageDone(name, stage)),
                on_progress=lambda sent, total: self.post_message(
                    self.KnockProgress(name, sent, total)
                ),
                demo=demo,
                allow_ip=allow_ip,
                cancel=cancel,
                clock=app.clock,
            )

        def finished(outcome: KnockOutcome | None) -> None:
            self.running.discard(name)
            self.cancels.pop(name, None)
            if outcome is None:  # the worker failed: the app has said why
                state = self.states[name].finished(False, "The knock stopped unexpectedly.")
                self.states[name] = state
            else:
                self._finished(name, outcome)
            self._refresh_row(name)

        app.background(
            work,
            done=finished,
            failed=lambda _exc: finished(None),
            what=f"knocking {name}",
            group=f"knock:{name}",
        )

    def _dead_demo(self, profile: Profile) -> bool:
        """A demo profile whose fwknopd is gone: say so instead of a knock "sent" to nobody."""
        from ...demo import demo_is_dead  # noqa: PLC0415 - only demo profiles get here

        if not demo_is_dead(profile):
            return False
        why = (
            f"{profile.name} is the demo's profile, and the demo's fwknopd is not running: "
            "run the demo again (ctrl+p, Run the demo)."
        )
        self.log_line(why, error=True)
        self.notify(why, title=f"{profile.name}: not knocked", severity="warning")
        return True

    @on(StageDone)
    def _stage_done(self, message: StageDone) -> None:
        state = self.states.get(message.profile)
        if state is None:
            return
        self.states[message.profile] = state.with_stage(message.stage)
        if message.stage.stage == "server":
            self._pump_demo_log()
        if self.selected is not None and self.selected.name == message.profile:
            self._show_selected()

    @on(KnockProgress)
    def _knock_progress(self, message: KnockProgress) -> None:
        state = self.states.get(message.profile)
        if state is None or not state.running:
            return
        self.states[message.profile] = state.with_progress(message.sent, message.total)
        if self.selected is not None and self.selected.name == message.profile:
            self._show_selected()
        self._show_status()

    def _finished(self, name: str, outcome: KnockOutcome) -> None:
        self.last[name] = outcome.record
        state = self.states[name]
        for stage in outcome.record.stages:  # stages the messages may not have delivered yet
            if stage.stage not in {s.stage for s in state.done}:
                state = state.with_stage(stage)
        self.states[name] = state.finished(outcome.ok, outcome.headline, outcome.advice)
        self._pump_demo_log()
        self._log_record(outcome.record)
        if not outcome.ok:
            self.notify(outcome.headline, title=f"{name}: knock failed", severity="error")
        if self.selected is not None and self.selected.name == name:
            self._show_selected()

    def _refresh_row(self, name: str) -> None:
        row = self._row(name)
        if row is not None:
            self.query_one(ProfileTable).update_row(row, self.fwknop.clock())
        if self.selected is not None and self.selected.name == name:
            self._show_selected()
        self._show_status()

    def _show_status(self) -> None:
        """The status line: the last knock of the session (else of the history), countdowns."""
        now = self.fwknop.clock()
        name = self.latest
        if name is None and self.last:
            name = max(self.last.values(), key=lambda r: r.when).profile
        outcome = Text("")
        state = self.states.get(name) if name else None
        record = self.last.get(name) if name else None
        if state is None and record is not None:
            state = KnockState.of_record(record)
        if name is not None and state is not None:
            outcome = _outcome_line(name, state, now)
        countdowns = Text(" · ").join(
            Text.assemble((f"{glyphs.REKNOCK} ", "bold cyan"), n, f" {max(0, int(due - now))}s")
            for n, due in sorted(self.keep_open.items())
        )
        self.query_one(StatusLine).show(outcome, countdowns)

    def _pump_demo_log(self) -> None:
        demo = self.fwknop.demo
        if demo is None:
            return
        lines, self._demo_mark = demo.lines_since(self._demo_mark)
        for line in lines:
            self.log_line(f"  fwknopd (demo): {local_times(line)}")

    # -- keep open --------------------------------------------------------------------

    def action_keep_open(self) -> None:
        """Start or stop re-knocking the selected profile before its port closes."""
        profile = self.selected
        if profile is None:
            return
        name = profile.name
        if name in self.keep_open:
            del self.keep_open[name]
            self.log_line(f"{name}: keep open stopped")
        else:
            every = keep_open_interval(profile)
            self.keep_open[name] = self.fwknop.clock() + every
            self.log_line(f"{name}: keep open, a knock every {every} s")
            self.knock(profile)
        self._refresh_row(name)

    def _tick(self) -> None:
        """Each second: keep-open knocks that are due, every row's age, the status line."""
        now = self.fwknop.clock()
        for name, due in list(self.keep_open.items()):
            profile = self.profiles.get(name)
            if profile is not None and now >= due and name not in self.running:
                self.keep_open[name] = now + keep_open_interval(profile)
                self.knock(profile)
        table = self.query_one(ProfileTable)
        table.set_layout(width_class(self.app.size.width), now)  # resized under a dialog
        for name in table.names:
            row = self._row(name)
            if row is not None:
                table.update_row(row, now)
        self._show_status()
        self._pump_demo_log()

    def on_resize(self, event: events.Resize) -> None:
        """The table's columns follow the terminal's width."""
        self.query_one(ProfileTable).set_layout(width_class(event.size.width), self.fwknop.clock())

    # -- the other verbs --------------------------------------------------------------

    def action_new(self) -> None:
        """Create a profile in the editor."""
        self.app.push_screen(_screens().EditorScreen(None), self._saved)

    def action_edit(self) -> None:
        """Edit the selected profile."""
        profile = self.selected
        if profile is None:
            self.notify("Select a profile to edit.")
            return
        self.app.push_screen(_screens().EditorScreen(profile), self._saved)

    def _saved(self, name: str | None) -> None:
        if name:
            old = self.selected.name if self.selected else None
            if old and old != name and old not in self.fwknop.wallet_names():
                self.fwknop.history.rename(old, name)
                self.states.pop(old, None)
            self.log_line(f"{name}: saved")
            self.reload(select=name)

    def action_delete(self) -> None:
        """Delete the selected profile and its keyring entries, after asking."""
        profile = self.selected
        if profile is None:
            return
        name = profile.name

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            wallet = self.fwknop.wallet

            def removed(slots: list[str]) -> None:
                self.fwknop.history.forget(name)
                self.states.pop(name, None)
                self.keep_open.pop(name, None)
                self.log_line(f"{name}: deleted (keyring entries: {', '.join(slots) or 'none'})")
                self.reload()

            self.fwknop.background(
                lambda: wallet.remove(name), done=removed, what=f"deleting {name}", group="wallet"
            )

        self.app.push_screen(
            _screens().ConfirmScreen(
                f"Delete the profile {name} and its keys in the keyring?\n"
                "The server's access.conf is not changed.",
                yes="Delete",
                danger=True,
            ),
            confirmed,
        )

    def action_share(self) -> None:
        """Show the selected profile's keys as a QR code."""
        profile = self.selected
        if profile is None:
            return
        if profile.uses_gpg:
            self.notify("A GnuPG profile has no shared key to show.", severity="warning")
            return
        self.app.push_screen(_screens().ShareScreen(profile.name, public=profile.uses_x25519))

    def action_import(self, tab: str = "rc") -> None:
        """Import profiles from an rc file, or keys from share text."""

        def imported(names: list[str] | None) -> None:
            if names:
                self.log_line(f"imported: {', '.join(names)}")
                self.reload(select=names[0])

        self.app.push_screen(_screens().ImportScreen(tab=tab), imported)

    def action_keygen(self) -> None:
        """Generate new keys for the selected profile, into the keyring; show the stanza."""
        profile = self.selected
        if profile is None:
            return
        name = profile.name
        wallet = self.fwknop.wallet

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return

            def generate() -> str:
                from ...wallet.rc import access_stanza  # noqa: PLC0415

                keys = wallet.generate(name, replace=True)
                return access_stanza(wallet.get(name), keys)

            def done(stanza: str) -> None:
                self.log_line(f"{name}: new keys in the keyring")
                self.reload(select=name)
                self.app.push_screen(
                    _screens().StanzaScreen(
                        f"New access.conf stanza for {name}", stanza, profile=name
                    )
                )

            self.fwknop.background(generate, done=done, what=f"keygen for {name}", group="wallet")

        self.app.push_screen(
            _screens().ConfirmScreen(
                f"Generate new keys for {name}? The old ones are replaced, so the server's "
                "access.conf must get the new stanza (shown next).",
                yes="Generate",
                danger=True,
            ),
            confirmed,
        )

    def action_stanza(self) -> None:
        """Show the server's access.conf stanza for the selected profile."""
        profile = self.selected
        if profile is None:
            return
        name = profile.name
        wallet = self.fwknop.wallet
        self.fwknop.background(
            lambda: wallet.server_stanza(name),
            done=lambda text: self.app.push_screen(
                _screens().StanzaScreen(f"access.conf stanza for {name}", text, profile=name)
            ),
            what=f"building the stanza for {name}",
            group="wallet",
        )

    def act(self, action: str, name: str) -> None:
        """Select a profile, then run one of this screen's actions on it (the palette's way)."""
        table = self.query_one(ProfileTable)
        if name not in table.names:
            self.query_one("#filter", Input).value = ""
            self._redraw(select=name)
        table.select_name(name)
        getattr(self, f"action_{action}")()

    def action_help(self) -> None:
        """The help screen: every screen's keys, as mapped."""
        from ..bindings import sections  # noqa: PLC0415

        rows = sections(self.fwknop.settings.keymap, self.app.get_key_display)
        self.app.push_screen(_screens().HelpScreen(rows))
