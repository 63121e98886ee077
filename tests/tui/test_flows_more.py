"""More TUI flows: share, import, keygen, the palette, key maps and themes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Select

from fwknop_core import generate_keys
from fwknop_tui.ui.screens.help import HelpScreen
from fwknop_tui.ui.screens.importer import ImportScreen
from fwknop_tui.ui.screens.main import MainScreen
from fwknop_tui.ui.screens.share import ShareScreen
from fwknop_tui.ui.screens.stanza import StanzaScreen, mask_keys
from fwknop_tui.ui.settings import Settings, load_settings
from fwknop_tui.ui.widgets.qr_code import QrCode
from fwknop_tui.ui.widgets.secret_input import SecretInput

from .conftest import Tui, notices, palette_choice, press_button, text_of, wait_until
from .test_flows import SIZE, add_profile, main_of


async def test_share_warns_first_then_draws_a_qr_code_that_decodes_to_the_keys(
    tui: Tui, tmp_path: Path
) -> None:
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (zbar-tools) is not installed")
    add_profile(tui, "home")
    expected = tui.wallet.share_text("home")
    app = tui.app()
    async with app.run_test(size=(140, 60)) as pilot:
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, ShareScreen)
        assert not screen.query(QrCode), "the QR code was shown before the warning"
        assert "holds this profile's keys" in text_of(screen.query_one(".warning"))
        await press_button(pilot, "#show")
        await wait_until(pilot, lambda: screen.query(QrCode), what="the QR code")
        qr = screen.query_one(QrCode)
        assert qr.modules > 21
        out = tmp_path / "share.png"
        screen.query_one("#export-path", Input).value = str(out)
        await press_button(pilot, "#png")
        await wait_until(
            pilot, lambda: any(n.startswith("Saved: ") for n in notices(app)), what="the PNG"
        )
        assert out.stat().st_mode & 0o777 == 0o600
        decoded = subprocess.run(
            ["zbarimg", "--raw", "-q", str(out)], capture_output=True, check=True, timeout=60
        ).stdout.decode()
        assert decoded.rstrip("\n") == expected
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_the_terminal_qr_code_encodes_exactly_the_share_text(tui: Tui) -> None:
    from fwknop_tui.qr import qr_matrix
    from fwknop_tui.ui.widgets.qr_code import qr_text

    add_profile(tui, "home")
    text = tui.wallet.share_text("home")
    drawn = qr_text(qr_matrix(text))
    # each line is two module rows: upper half block, foreground = top module, background = bottom
    rows: list[list[bool]] = []
    for line in drawn.split("\n"):
        top: list[bool] = []
        bottom: list[bool] = []
        assert set(line.plain) == {"▀"}
        for span in line.spans:
            style = span.style
            assert not isinstance(style, str)
            width = span.end - span.start
            top += [style.color is not None and style.color.name == "#000000"] * width
            bottom += [style.bgcolor is not None and style.bgcolor.name == "#000000"] * width
        rows += [top, bottom]
    matrix = qr_matrix(text)
    assert rows[: len(matrix)] == matrix


async def test_import_rc_shows_a_preview_then_imports_with_keys(tui: Tui, tmp_path: Path) -> None:
    keys = generate_keys()
    rc = tmp_path / "fwknoprc"
    rc.write_text(
        "[default]\nSPA_SERVER_PROTO udp\n\n"
        f"[office]\nSPA_SERVER 203.0.113.9\nACCESS tcp/22\nKEY_BASE64 {keys.rijndael.to_base64()}\n"
        f"HMAC_KEY_BASE64 {keys.hmac.to_base64()}\nUSE_HMAC Y\nBOGUS 1\n"
    )
    rc.chmod(0o600)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#rc-path", Input).value = str(rc)
        await press_button(pilot, "#rc-preview")
        table = screen.query_one("#rc-plan", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the preview")
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "office" and row[2] == "203.0.113.9" and "rijndael" in row[3]
        assert "BOGUS" in text_of(screen.query_one("#rc-warnings"))
        assert tui.wallet.names() == [], "the preview wrote something"
        await press_button(pilot, "#rc-import")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the import")
    profile = tui.wallet.get("office")
    assert profile.host == "203.0.113.9"
    got = tui.wallet.keys(profile)
    assert got.rijndael == keys.rijndael and got.hmac == keys.hmac


async def test_the_import_previews_header_is_drawn_at_the_columns_final_widths(
    tui: Tui, tmp_path: Path
) -> None:
    """A frame drawn before the table's idle measure (a loaded machine) still fits the rows."""
    rc = tmp_path / "fwknoprc"
    rc.write_text("[a-long-profile-name]\nSPA_SERVER host.with.a.long.name.example.org\n")
    rc.chmod(0o600)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportScreen), what="import")
        screen = app.screen
        table = screen.query_one("#rc-plan", DataTable)
        await pilot.pause()
        screen._show_plan(tui.wallet.plan_rc_file(rc))  # type: ignore[attr-defined]
        header = table.render_line(0).text  # now, before any idle message
        for column in table.ordered_columns:
            assert column.content_width >= max(len(str(c)) for c in table.get_column(column.key))
        name, host = (table.ordered_columns[i].get_render_width(table) for i in (0, 2))
        assert header.index("Stanza") == table.cell_padding + name
        assert header[header.index("Host") + 4 :].startswith(" " * (host - 4 - table.cell_padding))


async def test_import_share_text_into_a_new_profile(tui: Tui) -> None:
    keys = generate_keys()
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        # the share tab's fields are built when it is first shown, not with the dialog
        assert not screen.query("#share-text")
        screen.query_one("#import-tabs").active = "tab-share"  # type: ignore[attr-defined]
        await pilot.pause()
        box = screen.query_one("#share-text", SecretInput)
        assert box.password
        box.value = keys.as_text().replace("\n", " ")
        await pilot.pause()
        preview = text_of(screen.query_one("#share-preview"))
        assert "a Rijndael key (base64, 32 bytes)" in preview and "an HMAC key" in preview
        assert keys.rijndael.to_base64() not in preview
        screen.query_one("#share-name", Input).value = "phone"
        screen.query_one("#share-host", Input).value = "spa.example.org"
        await press_button(pilot, "#share-import")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the import")
    got = tui.wallet.keys(tui.wallet.get("phone"))
    assert got.rijndael == keys.rijndael and got.hmac == keys.hmac


async def test_import_opened_on_its_share_tab_has_the_share_fields_at_once(tui: Tui) -> None:
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        main_of(app).action_import("share")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportScreen), what="import")
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#import-tabs").active == "tab-share"  # type: ignore[attr-defined]
        assert screen.query_one("#share-text", SecretInput).password
        screen.query_one("#import-tabs").active = "tab-rc"  # type: ignore[attr-defined]
        await pilot.pause()
        screen.query_one("#import-tabs").active = "tab-share"  # type: ignore[attr-defined]
        await pilot.pause()
        assert len(screen.query("#share-text")) == 1, "the share tab was built twice"


async def test_import_share_refuses_to_replace_keys_unless_asked(tui: Tui) -> None:
    add_profile(tui, "home")
    before = tui.secrets.get_many("home", ["rijndael"])
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        screen = app.screen
        screen.query_one("#import-tabs").active = "tab-share"  # type: ignore[attr-defined]
        await pilot.pause()
        screen.query_one("#share-target", Select).value = "home"
        screen.query_one("#share-text", SecretInput).value = generate_keys().as_text()
        await press_button(pilot, "#share-import")
        refused = "Failed: importing keys"
        await wait_until(
            pilot, lambda: any(n.startswith(refused) for n in notices(app)), what=refused
        )
        assert isinstance(app.screen, ImportScreen)
    assert tui.secrets.get_many("home", ["rijndael"]) == before


async def test_keygen_replaces_the_keys_and_shows_the_masked_stanza(tui: Tui) -> None:
    add_profile(tui, "home")
    before = tui.secrets.get_many("home", ["rijndael", "hmac"])
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.click("#yes")
        await wait_until(pilot, lambda: isinstance(app.screen, StanzaScreen), what="the stanza")
        screen = app.screen
        after = tui.secrets.get_many("home", ["rijndael", "hmac"])
        assert after != before and None not in after.values()
        shown = text_of(screen.query_one("#stanza-text"))
        assert after["rijndael"] not in shown, "the stanza showed the key before Reveal"
        assert "KEY_BASE64" in shown and "•" in shown
        await pilot.press("r")
        revealed = after["rijndael"]
        await wait_until(
            pilot, lambda: revealed in text_of(screen.query_one("#stanza-text")), what="reveal"
        )


def test_mask_keys_hides_every_key_line() -> None:
    text = "SOURCE ANY\nKEY_BASE64 abc=\nHMAC_KEY_BASE64 def=\nHMAC_DIGEST_TYPE sha256\n"
    masked = mask_keys(text)
    assert "abc=" not in masked and "def=" not in masked
    assert "SOURCE ANY" in masked and "HMAC_DIGEST_TYPE sha256" in masked


async def test_the_palette_knocks_a_profile_by_name(tui: Tui) -> None:
    add_profile(tui, "alpha")
    add_profile(tui, "beta")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"knock beta")
        await wait_until(pilot, lambda: "beta" in (palette_choice(app) or ""), what="the hit")
        await pilot.press("enter")
        main = main_of(app)
        await wait_until(pilot, lambda: "beta" in main.last, what="the knock")
        assert "alpha" not in main.last


async def test_a_remapped_key_knocks_and_the_help_screen_shows_it(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app(settings=Settings(keymap={"knock": "x"}, path=tui.root / "tui.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        main = main_of(app)
        await wait_until(pilot, lambda: "home" in main.last, what="the knock")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        rows = {ident: (keys, action) for keys, action, ident, _tip in app.screen.rows()}
        assert rows["knock"] == ("x", "Knock")


async def test_a_theme_change_is_remembered_and_comments_survive(tui: Tui) -> None:
    path = tui.root / "tui.toml"
    path.write_text('# my settings\ntheme = "textual-dark"  # dark\n')
    settings, problems = load_settings(path)
    assert not problems
    app = tui.app(settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        app.theme = "nord"
        await wait_until(pilot, lambda: "nord" in path.read_text(), what="the settings write")
    text = path.read_text()
    assert "# my settings" in text and 'theme = "nord"' in text
    assert load_settings(path)[0].theme == "nord"


def test_bad_settings_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tui.toml"
    path.write_text('theme = "nord"\n[keymap]\nknock = 5\n')
    settings, problems = load_settings(path)
    assert settings.keymap == {}
    assert problems == [f'{path}:3: keymap.knock: must be a string of keys, e.g. "ctrl+k"']
    path.write_text("theme = \n")
    assert "not TOML" in load_settings(path)[1][0]


async def test_every_binding_has_an_id_and_a_tooltip(tui: Tui) -> None:
    import importlib
    import inspect

    from fwknop_tui.ui import screens
    from fwknop_tui.ui.app import FwknopApp

    names = ("main", "editor", "share", "importer", "help", "confirm", "stanza", "ask", "first_run")
    modules = [importlib.import_module(f"{screens.__name__}.{m}") for m in names]
    classes = [FwknopApp] + [
        c
        for m in modules
        for _n, c in inspect.getmembers(m, inspect.isclass)
        if c.__module__ == m.__name__ and hasattr(c, "BINDINGS")
    ]
    bindings = [(c.__name__, b) for c in classes for b in c.__dict__.get("BINDINGS", [])]
    assert len(bindings) > 20
    for owner, b in bindings:
        assert b.id, f"{owner}: {b.key} has no id"  # type: ignore[union-attr]
        assert b.tooltip, f"{owner}: {b.key} has no tooltip"  # type: ignore[union-attr]


async def test_the_first_run_screen_buttons_lead_to_the_editor_and_import(tui: Tui) -> None:
    app = tui.app(first_run=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#new")
        await pilot.pause()
        assert type(app.screen).__name__ == "EditorScreen"
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
    app = tui.app(first_run=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#import")
        await pilot.pause()
        assert isinstance(app.screen, ImportScreen)


async def test_a_failed_save_names_the_clash_at_the_name_field(tui: Tui) -> None:
    add_profile(tui, "taken")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        editor = app.screen
        editor.query_one("#f-name", Input).value = "taken"
        editor.query_one("#f-host", Input).value = "h"
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: "already exists" in text_of(editor.query_one("#h-name")),
            what="the clash message",
        )
        assert isinstance(app.screen, type(editor))
        assert editor.query_one("#save", Button)


async def test_the_palette_finds_a_knock_by_the_word_send(tui: Tui) -> None:
    add_profile(tui, "alpha")
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"send alpha")
        await wait_until(pilot, lambda: "alpha" in (palette_choice(app) or ""), what="the hit")
        await pilot.press("enter")
        main = main_of(app)
        await wait_until(pilot, lambda: "alpha" in main.last, what="the knock")
