"""Work is never lost and help is always true: questions before loss, honest messages."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any

from textual.widgets import Input, Select, Static

from fwknop_tui.demo import DEMO_DESCRIPTION
from fwknop_tui.history import KnockRecord
from fwknop_tui.ui.screens.confirm import ConfirmScreen
from fwknop_tui.ui.screens.editor import EditorScreen
from fwknop_tui.ui.screens.help import HelpScreen
from fwknop_tui.ui.screens.main import MainScreen
from fwknop_tui.ui.screens.share import ShareScreen
from fwknop_tui.ui.screens.stanza import StanzaScreen, clipboard_note
from fwknop_tui.ui.settings import Settings
from fwknop_tui.ui.widgets.knock_log import KnockLog
from fwknop_tui.ui.widgets.profile_table import ProfileTable
from fwknop_tui.ui.widgets.qr_code import QrCode

from .conftest import FIXED_NOW, Tui, notices, press_button, text_of, wait_until
from .test_flows import SIZE, add_profile, main_of


async def _open_editor(pilot: object, key: str = "n") -> EditorScreen:
    app = pilot.app  # type: ignore[attr-defined]
    await pilot.press(key)  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")  # type: ignore[arg-type]
    await pilot.pause()  # type: ignore[attr-defined]
    return app.screen  # type: ignore[no-any-return]


async def test_escape_on_a_changed_draft_asks_and_enter_keeps_editing(tui: Tui) -> None:
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await _open_editor(pilot)
        await pilot.press(*"lab")
        await pilot.press("ctrl+g")  # fresh keys: their stanza may already be on a server
        await pilot.pause()
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="question")
        assert "keys in the form are lost" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("enter")  # the default: keep editing
        await pilot.pause()
        assert app.screen is editor
        assert editor.query_one("#f-name", Input).value == "lab"
        assert editor.query_one("#k-rijndael", Input).value
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="question")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="main")
    assert tui.wallet.names() == []


async def test_escape_on_an_untouched_form_leaves_without_a_question(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await _open_editor(pilot, "e")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_a_check_due_when_the_editor_closes_does_not_end_the_app(tui: Tui) -> None:
    # escape right after a field changed: the check comes after the editor is gone
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await _open_editor(pilot, "e")
        await wait_until(pilot, lambda: editor.ready, what="the editor's fields")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="main")
        assert editor._check() is None
        editor._deferred_check()
        await editor._first_tab()
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, MainScreen)


async def test_escape_while_a_tab_is_being_built_does_not_end_the_app(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await _open_editor(pilot, "e")
        await wait_until(pilot, lambda: editor.ready, what="the editor's fields")
        editor._fill("crypto")  # its Selects start mounting; escape comes before they are up
        selects = [c for c in editor._controls.values() if isinstance(c, Select)]
        assert selects and not all(s.is_mounted for s in selects)
        leave = editor.dismiss
        mounted_when_leaving: list[bool] = []

        def dismiss(result: object = None) -> Any:
            # a Select removed half mounted ends the app (it looks for its overlay as it mounts)
            mounted_when_leaving.append(all(s.is_mounted for s in selects))
            return leave(result)  # type: ignore[arg-type]

        editor.dismiss = dismiss  # type: ignore[method-assign]
        await editor.action_cancel()
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="main")
        await pilot.pause()
        assert mounted_when_leaving == [True]
        assert app.is_running and app.return_code is None


async def test_enter_on_the_delete_question_keeps_the_profile(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="question")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the list")
    assert tui.wallet.names() == ["home"]


async def test_a_new_form_opens_without_errors_and_key_lengths_are_checked_as_you_type(
    tui: Tui,
) -> None:
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        editor = await _open_editor(pilot)
        assert not editor.query(".help.error"), "a new form opened with errors"
        assert not editor.query_one("#problems").display
        await pilot.press(*"lab")
        await pilot.pause()
        assert not editor.query(".help.error"), "the host was blamed before it was reached"
        too_long = base64.b64encode(bytes(40)).decode()
        await editor.show_group("crypto")
        editor.query_one("#k-rijndael", Input).value = too_long
        await pilot.pause()
        message = text_of(editor.query_one("#h-rijndael", Static))
        assert "1..32 bytes, not 40" in message, message
        assert too_long not in message
        # Save names everything missing, the untouched host included
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "must not be empty" in text_of(editor.query_one("#h-host", Static))


async def test_help_lists_the_binding_ids_of_every_screen(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        ids = {ident for _keys, _action, ident, _tip in app.screen.rows()}  # type: ignore[attr-defined]
    expected = {
        "knock",
        "reload",
        "command_palette",
        "editor.save",
        "editor.cancel",
        "share.png",
        "stanza.write",
        "import.close",
        "confirm.yes",
        "ask.cancel",
        "first.demo",
        "help.close",
    }
    assert expected <= ids, expected - ids


async def test_unknown_binding_ids_in_tui_toml_are_named_with_file_and_line(tui: Tui) -> None:
    path = tui.root / "tui.toml"
    path.write_text('[keymap]\nknok = "x"\nknock = "k"\n')
    settings = Settings(keymap={"knok": "x", "knock": "k"}, path=path)
    app = tui.app(settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: any("knok" in p for p in app.setting_problems), what="the warning"
        )
        problems = [p for p in app.setting_problems if "knok" in p]
    assert problems == [
        f"{path}:2: keymap.knok: no binding has this id, so it changes nothing (F1 lists every id)"
    ]


async def test_stanza_key_lines_never_wrap_and_scroll_sideways(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, StanzaScreen), what="stanza")
        screen = app.screen
        await pilot.press("r")
        await pilot.pause()
        await pilot.pause()
        text = screen.query_one("#stanza-text", Static)
        longest = max(len(line) for line in screen.stanza.splitlines())  # type: ignore[attr-defined]
        assert longest > 76
        assert text.size.width >= longest, "a key line wraps"
        assert screen.query_one("#stanza-scroll").max_scroll_x > 0


def test_the_copy_message_says_what_was_done_not_that_it_worked() -> None:
    plain = clipboard_note({})
    assert "OSC 52" in plain and "if paste gives nothing" in plain and "Copied" not in plain
    assert "set-clipboard on" in clipboard_note({"TMUX": "/tmp/tmux-0/default,1,0"})


async def test_the_stanza_is_written_to_a_0600_file_even_over_a_0644_one(
    tui: Tui, tmp_path: Path
) -> None:
    add_profile(tui, "home")
    out = tmp_path / "home.conf"
    out.write_text("old")
    out.chmod(0o644)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, StanzaScreen), what="stanza")
        screen = app.screen
        await pilot.press("c")
        await wait_until(pilot, lambda: any("OSC 52" in n for n in notices(app)), what="OSC 52")
        screen.query_one("#stanza-path", Input).value = str(out)
        await press_button(pilot, "#write")
        await wait_until(pilot, lambda: out.read_text() != "old", what="the file")
        stanza = screen.stanza  # type: ignore[attr-defined]
    assert out.read_text() == stanza and "KEY_BASE64" in stanza
    assert out.stat().st_mode & 0o777 == 0o600


async def test_a_broken_profiles_file_keeps_a_banner_with_file_and_line(tui: Tui) -> None:
    path = tui.root / "config" / "profiles.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[profiles.home]\nhost = \n")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: main.query_one("#banner", Static).display, what="banner")
        banner = main.query_one("#banner", Static)
        assert banner.display and f"{path}:2" in text_of(banner)
        assert any(f"{path}:2" in line for line in main.query_one(KnockLog).plain_lines)
        assert "No profiles yet" not in text_of(main.query_one("#knock"))
        await pilot.pause(1.2)  # still there after the toasts would have gone
        assert banner.display
        path.write_text('[profiles.home]\nhost = "h"\n')
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not banner.display
        assert main.query_one(ProfileTable).names == ["home"]


async def test_last_knock_ages_move_on(tui: Tui) -> None:
    add_profile(tui, "home")
    tui.history.append(KnockRecord("home", FIXED_NOW - 4, True, 0.05, "sent", ()))
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        table = main.query_one(ProfileTable)
        assert " 4s " in str(table.get_cell("home", "last"))
        tui.clock.now += 120
        main._tick()
        await pilot.pause()
        assert " 2m " in str(table.get_cell("home", "last"))


async def test_the_demo_profile_goes_with_the_demo(tui: Tui) -> None:
    app = tui.app(demo=True)
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" in main.last, timeout=30, what="the demo knock")
        assert tui.wallet.names() == ["demo"]
    assert tui.wallet.names() == []
    assert tui.secrets.get_many("demo", ["rijndael", "hmac"]) == {"rijndael": None, "hmac": None}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_demo_profile_left_by_a_killed_tui_is_removed_at_the_next_start(
    tui: Tui,
) -> None:
    table = {"host": "127.0.0.1", "port": _free_udp_port(), "description": DEMO_DESCRIPTION}
    add_profile(tui, "demo", **table)
    add_profile(tui, "mine", host="127.0.0.1", port=_free_udp_port())
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" not in main.profiles, what="the removal")
        assert any(
            "left by an earlier session" in line for line in main.query_one(KnockLog).plain_lines
        )
    assert tui.wallet.names() == ["mine"]


async def test_a_knock_on_a_demo_whose_server_died_is_not_reported_sent(tui: Tui) -> None:
    app = tui.app(demo=True)
    async with app.run_test(size=SIZE) as pilot:
        main = main_of(app)
        await wait_until(pilot, lambda: "demo" in main.last, timeout=30, what="the demo knock")
        first = main.last["demo"]
        assert app.demo is not None
        app.demo.stop()  # the server dies under the TUI
        await pilot.press("k")
        await wait_until(
            pilot,
            lambda: any("demo's fwknopd is not running" in n for n in notices(app)),
            what="the refusal",
        )
        assert main.last["demo"] is first, "a knock was sent to a dead demo"


async def test_no_screenshot_is_taken_of_a_screen_that_shows_keys(tui: Tui, tmp_path: Path) -> None:
    add_profile(tui, "home")
    shots = tmp_path / "shots"
    shots.mkdir()
    app = tui.app()
    async with app.run_test(size=(120, 40)) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Screenshot" in titles
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ShareScreen), what="share")
        await press_button(pilot, "#show")
        await wait_until(pilot, lambda: app.screen.query(QrCode), what="the QR code")
        assert "Screenshot" not in {c.title for c in app.get_system_commands(app.screen)}
        assert app.deliver_screenshot(path=str(shots)) is None
        app.action_screenshot(path=str(shots))
        await wait_until(
            pilot, lambda: any("no screenshot" in n for n in notices(app)), what="the refusal"
        )
        assert list(shots.iterdir()) == []
        await pilot.press("escape")
        await pilot.pause()
        app.action_screenshot(path=str(shots))  # the main screen holds no key: allowed
        await wait_until(pilot, lambda: list(shots.iterdir()), what="the main screen's shot")


def test_private_files_are_never_readable_by_others(tmp_path: Path) -> None:
    from fwknop_tui.wallet.profiles import atomic_write

    path = tmp_path / "keys"
    path.write_text("old")
    path.chmod(0o644)
    reader = os.open(path, os.O_RDONLY)  # someone who had it open before
    try:
        atomic_write(path, b"secret", private=True)
        assert os.read(reader, 100) == b"old", "the old file's reader sees the new keys"
    finally:
        os.close(reader)
    assert path.read_bytes() == b"secret"
    assert path.stat().st_mode & 0o777 == 0o600
