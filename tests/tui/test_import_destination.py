"""The import preview takes the destination of rc stanzas that name no server (issue 13)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input

from fwknop_core import generate_keys
from fwknop_tui.ui.screens.importer import ImportScreen
from fwknop_tui.ui.screens.main import MainScreen
from tests.tui.conftest import Tui, press_button, text_of, wait_until

SIZE = (100, 30)


async def test_a_default_stanza_is_imported_once_the_destination_is_given(
    tui: Tui, tmp_path: Path
) -> None:
    keys = generate_keys()
    rc = tmp_path / "fwknoprc"
    rc.write_text(
        "[default]\n"
        f"KEY_BASE64 {keys.rijndael.to_base64()}\nHMAC_KEY_BASE64 {keys.hmac.to_base64()}\n"
    )
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportScreen), what="import")
        screen = app.screen
        table = screen.query_one("#rc-plan", DataTable)
        screen.query_one("#rc-path", Input).value = str(rc)
        await press_button(pilot, "#rc-preview")
        await wait_until(pilot, lambda: table.row_count == 1, what="the preview")
        assert [str(c) for c in table.get_row_at(0)][-1] == "needs a destination"
        assert "--destination" in text_of(screen.query_one("#rc-warnings"))
        assert screen.query_one("#rc-import").disabled
        screen.query_one("#rc-destination", Input).value = "198.18.0.1"
        await press_button(pilot, "#rc-preview")
        await wait_until(
            pilot, lambda: str(table.get_row_at(0)[-1]) == "new", what="the new preview"
        )
        assert str(table.get_row_at(0)[2]) == "198.18.0.1"
        await press_button(pilot, "#rc-import")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the import")
    profile = tui.wallet.get("default")
    assert profile.host == "198.18.0.1"
    assert tui.wallet.keys(profile).rijndael == keys.rijndael
