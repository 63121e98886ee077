"""Passphrases typed into the editor that hold the word "key" are passphrases, not share text."""

from __future__ import annotations

from fwknop_tui.ui.screens.editor import EditorScreen
from fwknop_tui.ui.screens.main import MainScreen
from fwknop_tui.ui.widgets.secret_input import SecretInput
from fwknop_tui.wallet.keys import encode_stored
from fwknop_tui.wallet.profiles import Profile

from .conftest import Tui, wait_until

SIZE = (100, 30)


async def test_a_new_passphrase_with_key_in_it_leaves_the_hmac_key_alone(tui: Tui) -> None:
    profile = Profile.from_table("lab", {"host": "127.0.0.1", "key_format": "passphrase"})
    old_hmac = encode_stored(b"the old hmac passphrase")
    tui.wallet.add(profile, keys={"rijndael": encode_stored(b"old"), "hmac": old_hmac})
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await wait_until(pilot, lambda: editor.ready, what="the editor's fields")
        await editor.show_group("crypto")
        editor.query_one("#k-rijndael", SecretInput).value = "grey-monkey-key door"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the save")
    stored = tui.secrets.get_many("lab", ["rijndael", "hmac"])
    assert stored["rijndael"] == encode_stored(b"grey-monkey-key door")
    assert stored["hmac"] == old_hmac  # not replaced by the Rijndael passphrase
