"""80x24 first, and 200x50: every screen usable in a classic terminal and using a large one."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Static
from textual.widgets._footer import FooterKey

from fwknop_tui.history import KnockRecord
from fwknop_tui.ui.screens.editor import EditorScreen, FieldPane
from fwknop_tui.ui.screens.main import MainScreen
from fwknop_tui.ui.screens.share import ShareScreen
from fwknop_tui.ui.widgets.knock_log import KnockLog, local_times
from fwknop_tui.ui.widgets.profile_table import ProfileTable
from fwknop_tui.ui.widgets.qr_code import QrCode
from fwknop_tui.ui.widgets.status_line import StatusLine

from .conftest import FIXED_NOW, Tui, press_button, text_of, wait_until
from .test_flows import add_profile, main_of

SMALL = (80, 24)
LARGE = (200, 50)


def on_screen(widget: Widget, size: tuple[int, int]) -> bool:
    """Whether the whole widget is drawn inside the terminal (and not clipped by a parent)."""
    region = widget.region
    return (
        bool(region)
        and Region(0, 0, *size).contains_region(region)
        and (widget.screen.find_widget(widget).region == region)
    )


async def _reveal_qr(pilot: Any) -> ShareScreen:
    await pilot.press("s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ShareScreen), what="share")
    screen = pilot.app.screen
    await press_button(pilot, "#show")
    await wait_until(pilot, lambda: screen.query(QrCode), what="the QR code")
    await pilot.pause(0.1)
    await pilot.pause()
    return screen  # type: ignore[no-any-return]


def _decode_screen(svg: str, shrink: int, tmp_path: Path) -> str:
    """zbarimg on the rendered screen, scaled down as a phone camera would see it."""
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=svg.encode())
    image = Image.open(io.BytesIO(png)).convert("L")
    small = image.resize(
        (image.width // shrink, image.height // shrink), Image.Resampling.BOX
    ).point(lambda v: 255 if v > 128 else 0)
    out = tmp_path / f"screen-{shrink}.png"
    small.save(out)
    res = subprocess.run(
        ["zbarimg", "--raw", "-q", str(out)], capture_output=True, timeout=60, check=False
    )
    assert res.returncode == 0, f"no QR code found on the screen scaled 1/{shrink}"
    return res.stdout.decode().removesuffix("\n")


async def test_at_200x50_the_whole_code_shows_and_decodes_off_the_rendered_screen(
    tui: Tui, tmp_path: Path
) -> None:
    if shutil.which("zbarimg") is None:
        pytest.fail("zbarimg is not installed (apt-get install zbar-tools)")
    add_profile(tui, "home")
    expected = tui.wallet.share_text("home")
    app = tui.app()
    async with app.run_test(size=LARGE) as pilot:
        screen = await _reveal_qr(pilot)
        assert screen.rows_needed is None, "the code does not fit at 200x50"
        assert not screen.query_one("#qr-fit").display
        for selector in ("#export-path", "#png", "#svg", "#close"):
            assert on_screen(screen.query_one(selector), LARGE), f"{selector} is cut off"
        assert on_screen(screen.query_one(QrCode), LARGE)
        svg = app.export_screenshot()
    # a module is about 2 to 3 pixels then, as a phone's camera sees a terminal
    for shrink in (4, 6):
        assert _decode_screen(svg, shrink, tmp_path) == expected


async def test_at_80x24_the_share_screen_says_how_many_rows_it_needs_and_keeps_its_actions(
    tui: Tui, tmp_path: Path
) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        screen = await _reveal_qr(pilot)
        needed = screen.rows_needed
        assert needed is not None and needed > 24
        notice = text_of(screen.query_one("#qr-fit", Static))
        assert f"{needed} rows" in notice and "PNG (p)" in notice
        for selector in ("#export-path", "#png", "#svg", "#close"):
            assert on_screen(screen.query_one(selector), SMALL), f"{selector} is cut off"
        keys = {k.description for k in screen.query(FooterKey)}
        assert {"Close", "Save PNG", "Save SVG"} <= keys
        # the key saves the PNG
        out = tmp_path / "qr.png"
        screen.query_one("#export-path", Input).value = str(out)
        screen.query_one("#close", Button).focus()
        await pilot.press("p")
        await wait_until(pilot, out.exists, what="the PNG")
        assert out.stat().st_mode & 0o777 == 0o600
        # the number is right: a terminal that tall shows the whole code
        await pilot.resize_terminal(80, needed)
        await wait_until(pilot, lambda: screen.rows_needed is None, what="the code to fit")
        assert not screen.query_one("#qr-fit").display
        scroll = screen.query_one("#qr-scroll")
        assert scroll.max_scroll_y == 0


async def test_at_80x24_the_last_knock_and_the_countdown_stay_on_the_status_line(
    tui: Tui,
) -> None:
    add_profile(tui, "nokeys", keys=False)
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        main = main_of(app)
        await pilot.press("o")  # keep open: a knock now, and again in 24 s
        await wait_until(pilot, lambda: "nokeys" in main.last, what="the knock")
        await pilot.pause()
        status = main.query_one(StatusLine)
        assert on_screen(status, SMALL)
        line = status.text
        assert "nokeys" in line and "Failed at keys" in line, line
        assert "nokeys 24s" in line, line
        tui.clock.now += 10
        main._tick()
        assert "nokeys 14s" in status.text


async def test_the_log_rewraps_on_resize_and_never_runs_under_its_scrollbar(tui: Tui) -> None:
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        main = main_of(app)
        log = main.query_one(KnockLog)
        words = " ".join(f"word{n}" for n in range(40))
        main.log_line(f"{words} (25 ms)")
        await pilot.pause()
        width = log.scrollable_content_region.width
        assert log.lines and all(strip.cell_length <= width for strip in log.lines)
        assert log.virtual_size.width <= width, "the log scrolls sideways"
        shown = "\n".join(log.plain_lines)
        assert "(25 ms)" in shown, "the end of the line is hidden"
        narrow_lines = len(log.lines)
        await pilot.resize_terminal(*LARGE)
        await pilot.pause()
        await pilot.pause()
        assert len(log.lines) < narrow_lines, "the old wrap stayed after the resize"
        width = log.scrollable_content_region.width
        assert all(strip.cell_length <= width for strip in log.lines)
        # a wrapped line continues under its text, not under the time
        assert all(line.startswith(" " * 9) for line in log.plain_lines[1:narrow_lines] if line)


def test_the_servers_epoch_times_are_shown_as_local_times() -> None:
    # the autouse fixture sets TZ=UTC
    assert local_times("would open tcp/22 for 127.0.0.1 until 1796040030") == (
        "would open tcp/22 for 127.0.0.1 until 12:00:30"
    )
    assert local_times("port 1796040030 stays") == "port 1796040030 stays"


async def test_at_200x50_the_table_shows_whole_hosts_and_ports_and_the_knock_pane_widens(
    tui: Tui,
) -> None:
    host = "a-rather-long-host-name.spa.example.org"
    ports = ["tcp/22", "tcp/443", "udp/51820", "tcp/8080"]
    add_profile(tui, "long", host=host, access=ports)
    tui.history.append(KnockRecord("long", FIXED_NOW - 5, True, 0.05, "sent", ()))
    app = tui.app()
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        main = main_of(app)
        table = main.query_one(ProfileTable)
        row = [str(c) for c in table.get_row("long")]
        assert f"{host}:9" in row and ",".join(ports) in row, row
        assert main.query_one("#side").size.width > 60
        await pilot.resize_terminal(*SMALL)
        await pilot.pause()
        await pilot.pause()
        assert [c.label.plain for c in table.ordered_columns] == [
            "Profile",
            "Destination",
            "Last knock",
        ]
        assert table.selected_name == "long"


async def test_the_editors_target_tab_at_80x24_shows_its_fields_and_a_scrollbar(
    tui: Tui,
) -> None:
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")
        await pilot.pause()
        editor = app.screen
        pane = editor.query_one("#tab-target").query_one(FieldPane)
        visible = pane.region
        rows = [w for w in pane.query(".field") if visible.contains_region(w.region)]
        assert len(rows) >= 6, f"only {len(rows)} fields show"
        assert pane.show_vertical_scrollbar and pane.scrollbar_size_vertical >= 1
        assert pane.max_scroll_y > 0
        for selector in ("#save", "#cancel"):
            assert on_screen(editor.query_one(selector), SMALL)


async def test_at_80_columns_the_footer_shows_help(tui: Tui) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        # the footer draws its keys once the bindings are known (a frame after the screen)
        await wait_until(
            pilot, lambda: len(app.screen.query(FooterKey)) >= 6, what="the footer's keys"
        )
        await pilot.pause()
        keys = {k.description: k for k in app.screen.query(FooterKey)}
        assert "Help" in keys
        assert on_screen(keys["Help"], SMALL)


@pytest.mark.parametrize(
    ("key", "expected", "not_expected"),
    [
        ("n", {"Save", "Cancel", "Generate keys", "Server stanza"}, {"Knock", "New"}),
        ("t", {"Close", "Reveal", "Copy", "Write file"}, {"Knock"}),
        ("delete", {"Yes", "Cancel"}, {"Knock"}),
        ("i", {"Close"}, {"Knock"}),
    ],
)
async def test_every_dialog_shows_its_own_keys_in_its_footer(
    tui: Tui, key: str, expected: set[str], not_expected: set[str]
) -> None:
    add_profile(tui, "home")
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press(key)
        await wait_until(pilot, lambda: not isinstance(app.screen, MainScreen), what=key)
        await wait_until(pilot, lambda: app.screen.query(FooterKey), what="the footer's keys")
        await pilot.pause()
        shown = {k.description for k in app.screen.query(FooterKey)}
        assert expected <= shown, shown
        assert not shown & not_expected, shown


async def test_the_import_preview_fits_80x24(tui: Tui, tmp_path: Path) -> None:
    from .scenarios import FAKE

    rc = tmp_path / "fwknoprc"
    rc.write_text(
        f"[office]\nSPA_SERVER 203.0.113.9\nKEY_BASE64 {FAKE.rijndael.to_base64()}\n"
        f"HMAC_KEY_BASE64 {FAKE.hmac.to_base64()}\n"
    )
    rc.chmod(0o600)
    app = tui.app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("i")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ImportScreen")
        screen = app.screen
        screen.query_one("#rc-path", Input).value = str(rc)
        await press_button(pilot, "#rc-preview")
        table = screen.query_one("#rc-plan", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the preview")
        await pilot.pause()
        assert on_screen(screen.query_one("#rc-preview"), SMALL)
        assert on_screen(table, SMALL)
