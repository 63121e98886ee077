"""The TUI's flows, driven with Pilot and checked on state and messages."""

from __future__ import annotations

import socket

import pytest
from textual.widgets import Input, Select, Static

from fwknop_core import generate_keys
from fwknop_tui.errors import KeyringLockedError
from fwknop_tui.history import KnockRecord, StageRecord
from fwknop_tui.ui.screens.confirm import ConfirmScreen
from fwknop_tui.ui.screens.editor import EditorScreen
from fwknop_tui.ui.screens.main import MainScreen
from fwknop_tui.ui.widgets.knock_view import KnockView
from fwknop_tui.ui.widgets.profile_table import ProfileTable
from fwknop_tui.wallet.keys import encode_stored
from fwknop_tui.wallet.profiles import Profile
from fwknop_tui.wallet.secrets import MemoryStore

from .conftest import Tui, notices, text_of, wait_until

SIZE = (140, 44)


def add_profile(tui: Tui, name: str = "home", *, keys: bool = True, **fields: object) -> None:
    """A profile in the wallet, with fresh keys in the memory keyring."""
    table: dict[str, object] = {"host": "127.0.0.1", "port": 9, **fields}
    stored = {}
    if keys:
        k = generate_keys()
        stored = {
            "rijndael": encode_stored(k.rijndael.secret),
            "hmac": encode_stored(k.hmac.secret),
        }
    tui.wallet.add(Profile.from_table(name, table), keys=stored)


def main_of(app: object) -> MainScreen:
    return app.main_screen  # type: ignore[attr-defined,no-any-return]


def closed_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_demo_knocks_our_fwknopd_and_it_accepts(tui: Tui) -> None:
    app = tui.app(demo=True)
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" in main.last, what="the demo knock")
        record = main.last["demo"]
        assert record.ok, record.summary
        server = next(s for s in record.stages if s.stage == "server")
        assert server.ok
        assert "accepted: opening tcp/22 for 127.0.0.1" in server.detail
        assert [s.stage for s in record.stages] == ["keys", "resolve", "build", "send", "server"]
        demo = app.demo
        assert demo is not None and demo.running
        pid = demo.pid
        # the profile is real: its keys are in the keyring, not in the file
        profile = tui.wallet.get("demo")
        assert profile.port == demo.port
        assert set(tui.wallet.stored_slots("demo")) == {"rijndael", "hmac"}
        text = (tui.root / "config" / "profiles.toml").read_text()
        assert demo.keys.rijndael.to_base64() not in text
        # knocking again is refused by nobody: a new packet, a new grant
        await pilot.press("k")
        await wait_until(
            pilot,
            lambda: main.last["demo"].when != record.when or len(app.history.load()) > 1,
            what="a second knock",
        )
        assert main.last["demo"].ok
    assert not demo.running, "the demo fwknopd outlives the app"
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


async def test_first_run_offers_the_demo(tui: Tui) -> None:
    app = tui.app(first_run=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "FirstRunScreen"
        await pilot.press("d")
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" in main.last, what="the demo knock")
        assert main.last["demo"].ok


async def test_first_run_is_not_offered_when_profiles_exist(tui: Tui) -> None:
    add_profile(tui)
    app = tui.app(first_run=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_create_a_profile_by_typing_with_generated_keys(tui: Tui) -> None:
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, EditorScreen)
        await pilot.press(*"lab")
        await pilot.click("#f-host")
        await pilot.press(*"spa.example.org")
        editor = app.screen
        await editor.show_group("access")  # type: ignore[attr-defined]
        editor.query_one("#f-access", Input).value = "tcp/22, udp/53"
        await pilot.press("ctrl+g")  # generate keys into the (masked) inputs
        await pilot.pause()
        assert editor.query_one("#k-rijndael", Input).password
        assert editor.query_one("#k-rijndael", Input).value
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the save")
        profile = tui.wallet.get("lab")
        assert profile.host == "spa.example.org"
        assert profile.access == ("tcp/22", "udp/53")
        assert set(tui.secrets.get_many("lab", ["rijndael", "hmac"]).values()) - {None}
        stored = tui.secrets.get_many("lab", ["rijndael"])["rijndael"]
        assert (
            stored is not None and stored not in (tui.root / "config" / "profiles.toml").read_text()
        )
        assert main_of(app).query_one(ProfileTable).names == ["lab"]


async def test_fields_are_validated_inline_and_a_bad_profile_is_not_saved(tui: Tui) -> None:
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        editor = app.screen
        await pilot.press(*"x")
        editor.query_one("#f-host", Input).value = "h"
        editor.query_one("#f-port", Input).value = "99999"
        await pilot.pause()
        help_line = editor.query_one("#h-port", Static)
        assert "must be a number from 1 to 65535, not 99999" in text_of(help_line)
        assert help_line.has_class("error")
        editor.query_one("#f-port", Input).value = "4000"
        await editor.show_group("crypto")  # type: ignore[attr-defined]
        editor.query_one("#f-encryption_mode", Select).value = "legacy"
        await pilot.pause()
        problems = text_of(editor.query_one("#problems", Static))
        assert "legacy mode cannot be combined with an HMAC" in problems
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen), "a profile with problems was saved"
        assert not tui.wallet.names()
        # a key that is not base64 is refused by name, and never echoed
        editor.query_one("#f-encryption_mode", Select).value = "cbc"
        editor.query_one("#k-rijndael", Input).value = "not base64!"
        await pilot.press("ctrl+s")
        await pilot.pause()
        message = text_of(editor.query_one("#h-rijndael", Static))
        assert "not a usable" in message or "not valid base64" in message
        assert "not base64!" not in message
        assert not tui.wallet.names()


async def test_edit_renames_and_the_keys_follow(tui: Tui) -> None:
    add_profile(tui, "old")
    before = tui.secrets.get_many("old", ["rijndael", "hmac"])
    tui.history.append(KnockRecord("old", 1.0, True, 0.01, "sent", ()))
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        editor = app.screen
        editor.query_one("#f-name", Input).value = "new"
        editor.query_one("#f-port", Input).value = "4444"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the save")
        await pilot.pause()
    assert tui.wallet.names() == ["new"]
    assert tui.wallet.get("new").port == 4444
    assert tui.secrets.get_many("new", ["rijndael", "hmac"]) == before
    assert tui.secrets.get_many("old", ["rijndael", "hmac"]) == {"rijndael": None, "hmac": None}
    assert [r.profile for r in tui.history.load()] == ["new"]


async def test_delete_asks_first_then_removes_profile_and_keys(tui: Tui) -> None:
    add_profile(tui, "gone")
    add_profile(tui, "kept")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert tui.wallet.names() == ["gone", "kept"]
        await pilot.press("delete")
        await pilot.click("#yes")
        await wait_until(pilot, lambda: tui.wallet.names() == ["kept"], what="the delete")
    assert tui.secrets.get_many("gone", ["rijndael", "hmac"]) == {"rijndael": None, "hmac": None}


async def test_a_knock_without_keys_says_which_stage_failed_and_what_to_try(tui: Tui) -> None:
    add_profile(tui, "nokeys", keys=False)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        main = main_of(app)
        await wait_until(pilot, lambda: "nokeys" in main.last, what="the knock")
        record = main.last["nokeys"]
        assert not record.ok
        assert record.failed_stage == "keys"
        state = main.states["nokeys"]
        assert state.outcome.startswith("Failed at keys:")
        assert "no Rijndael key" in state.outcome or "keyring" in state.outcome
        assert "generate new ones (g)" in state.advice
        view = text_of(main.query_one(KnockView))
        assert "Try:" in view


async def test_a_port_that_never_answers_fails_the_verify_stage(tui: Tui) -> None:
    port = closed_tcp_port()
    add_profile(tui, "probe", verify=f"127.0.0.1:{port}", verify_retries=2, verify_interval=0.05)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        main = main_of(app)
        await wait_until(pilot, lambda: "probe" in main.last, what="the knock")
        record = main.last["probe"]
        assert not record.ok
        assert record.failed_stage == "verify"
        assert [s.ok for s in record.stages] == [True, True, True, True, False]
        assert f"127.0.0.1:{port} never answered" in main.states["probe"].advice


async def test_a_locked_keyring_is_explained_not_a_traceback(tui: Tui) -> None:
    class Locked(MemoryStore):
        def get_many(self, profile: str, slots: object) -> dict[str, str | None]:
            raise KeyringLockedError("the keyring is locked: unlock it (it may be asking)")

    add_profile(tui, "locked")
    tui.secrets = Locked()
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        main = main_of(app)
        await wait_until(pilot, lambda: "locked" in main.last, what="the knock")
        assert "unlock the keyring" in main.states["locked"].advice
        assert main.last["locked"].failed_stage == "keys"


async def test_the_filter_narrows_the_list_as_you_type(tui: Tui) -> None:
    for name in ("home", "lab", "vps-1"):
        add_profile(tui, name)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        table = main_of(app).query_one(ProfileTable)
        assert table.names == ["home", "lab", "vps-1"]
        await pilot.press("slash", *"la")
        await pilot.pause()
        assert table.names == ["lab"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.names == ["home", "lab", "vps-1"]


async def test_keep_open_reknocks_on_time_with_a_countdown(tui: Tui) -> None:
    app = tui.app(demo=True)
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" in main.last, what="the demo knock")
        await pilot.press("o")
        await wait_until(pilot, lambda: len(tui.history.load()) == 2, what="the keep-open knock")
        assert "demo" in main.keep_open
        due = main.keep_open["demo"]
        assert due == pytest.approx(tui.clock.now + 24)  # 80% of fwknopd's 30 s
        tui.clock.now += 10
        main._tick()
        cell = main.query_one(ProfileTable).get_cell("demo", "last")
        assert "14s" in str(cell)
        tui.clock.now += 15
        main._tick()
        await wait_until(pilot, lambda: len(tui.history.load()) == 3, what="the re-knock")
        assert all(r.ok for r in tui.history.load())
        await pilot.press("o")
        assert "demo" not in main.keep_open


async def test_ask_allow_ip_prompts_before_knocking(tui: Tui) -> None:
    add_profile(tui, "asker", allow_ip="ask")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        assert type(app.screen).__name__ == "AskAllowIpScreen"
        await pilot.press(*"300.1.2.3", "enter")
        assert type(app.screen).__name__ == "AskAllowIpScreen", "a bad address was taken"
        app.screen.query_one(Input).value = "198.51.100.7"
        await pilot.press("enter")
        main = main_of(app)
        await wait_until(pilot, lambda: "asker" in main.last, what="the knock")
        build = next(s for s in main.last["asker"].stages if s.stage == "resolve")
        assert "allow 198.51.100.7" in build.detail


async def test_a_damaged_profiles_file_is_reported_and_never_overwritten(tui: Tui) -> None:
    path = tui.root / "config" / "profiles.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[profiles.home]\nhost = \n")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        assert main.problems and str(path) in main.problems[0]
        await pilot.press("n")
        editor = app.screen
        await pilot.press(*"new")
        editor.query_one("#f-host", Input).value = "h"
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: any(n.startswith("Failed: saving new") for n in notices(app)),
            what="refusal",
        )
    assert path.read_text() == "[profiles.home]\nhost = \n"


def test_the_editor_shows_every_profile_field() -> None:
    from fwknop_tui.ui.fields import SPECS
    from fwknop_tui.wallet.profiles import FIELDS

    names = [s.name for s in SPECS]
    assert sorted(names) == sorted(FIELDS)
    assert len(names) == len(set(names))


async def test_stage_records_round_trip_through_the_history(tui: Tui) -> None:
    record = KnockRecord("p", 5.0, False, 0.5, "boom", (StageRecord("keys", False, 0.5, "x"),))
    tui.history.append(record)
    assert tui.history.load() == [record]
    # an unreadable line is skipped, not fatal
    with tui.history.path.open("a") as fh:
        fh.write("{not json\n")
    assert tui.history.load() == [record]


async def test_a_missing_keyring_is_explained(tui: Tui) -> None:
    from fwknop_tui.errors import NoKeyringError
    from fwknop_tui.wallet.secrets import NO_KEYRING_HELP

    class Absent(MemoryStore):
        def get_many(self, profile: str, slots: object) -> dict[str, str | None]:
            raise NoKeyringError(NO_KEYRING_HELP.format(why=""))

    add_profile(tui, "nobackend")
    tui.secrets = Absent()
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        main = main_of(app)
        await wait_until(pilot, lambda: "nobackend" in main.last, what="the knock")
        state = main.states["nobackend"]
        assert "dbus-run-session" in state.outcome
        assert "key command or key file" in state.advice


async def test_keys_never_reach_the_screen_the_log_or_the_history(tui: Tui) -> None:
    app = tui.app(demo=True)
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" in main.last, what="the demo knock")
        demo = app.demo
        assert demo is not None
        secrets = [demo.keys.rijndael.to_base64(), demo.keys.hmac.to_base64()]
        screens = [app.export_screenshot()]
        await pilot.press("t")  # the stanza: masked until revealed
        await wait_until(pilot, lambda: type(app.screen).__name__ == "StanzaScreen")
        await pilot.pause()
        screens.append(app.export_screenshot())
        await pilot.press("escape", "e")  # the editor: key fields empty (the keyring keeps them)
        await pilot.pause()
        app.screen.query_one("#groups").active = "tab-crypto"  # type: ignore[attr-defined]
        await pilot.pause()
        screens.append(app.export_screenshot())
    history = tui.history.path.read_text()
    for secret in secrets:
        for svg in screens:
            assert secret not in svg and secret[:20] not in svg
        assert secret not in history
