"""The TUI with x25519 profiles: the editor, the share screen, the stanza, a knock."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Select

from fwknop_core import X25519Keyring, X25519PrivateKey
from fwknop_tui.ui.screens.editor import NOT_X25519, X25519_ONLY, EditorScreen
from fwknop_tui.ui.screens.main import MainScreen
from fwknop_tui.ui.screens.share import ShareScreen
from fwknop_tui.ui.screens.stanza import StanzaScreen, holds_secrets, mask_keys
from fwknop_tui.ui.widgets.profile_detail import summary_lines
from fwknop_tui.ui.widgets.qr_code import QrCode
from fwknop_tui.wallet.profiles import Profile

from .conftest import Tui, notices, press_button, text_of, wait_until
from .test_flows import SIZE, main_of

SERVER = X25519PrivateKey(bytes(range(32)))


def add_x25519(tui: Tui, name: str = "home", **fields: object) -> X25519PrivateKey:
    """An x25519 profile aimed at our server, its private key in the memory keyring."""
    key = X25519PrivateKey.generate()
    table: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 9,
        "server_type": "fwknop-tui",
        "encryption": "x25519",
        "server_public_key": SERVER.public_key.to_text(),
        **fields,
    }
    tui.wallet.add(Profile.from_table(name, table), keys={"x25519": key.to_text()})
    return key


async def test_the_editor_makes_an_x25519_profile_with_a_generated_key(tui: Tui) -> None:
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await wait_until(pilot, lambda: editor.ready, what="the editor's fields")
        editor.query_one("#f-name", Input).value = "lab"
        editor.query_one("#f-host", Input).value = "spa.example.org"
        await editor.show_group("crypto")
        editor.query_one("#f-encryption", Select).value = "x25519"
        await pilot.pause()
        problems = text_of(editor.query_one("#problems"))
        assert "the C fwknopd 2.6 cannot read it" in problems
        assert "needs the server's public key" in problems
        editor.query_one("#f-server_type", Select).value = "fwknop-tui"
        editor.query_one("#f-server_public_key", Input).value = SERVER.public_key.to_text()
        await pilot.pause()
        assert text_of(editor.query_one("#problems")) == ""
        await pilot.press("ctrl+g")
        await pilot.pause()
        box = editor.query_one("#k-x25519", Input)
        assert box.password and box.value.startswith("x25519-priv:")
        assert editor.query_one("#k-rijndael", Input).value == ""
        typed = box.value
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="the save")
    profile = tui.wallet.get("lab")
    assert profile.uses_x25519 and profile.server_public_key == SERVER.public_key.to_text()
    assert tui.secrets.get_many("lab", ["x25519"]) == {"x25519": typed}
    assert typed not in (tui.root / "config" / "profiles.toml").read_text()


async def test_the_editor_refuses_a_public_key_as_the_private_one(tui: Tui) -> None:
    add_x25519(tui)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await editor.show_group("crypto")
        editor.query_one("#k-x25519", Input).value = SERVER.public_key.to_text()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen)
        assert "that is a public key" in text_of(editor.query_one("#h-x25519"))


async def test_the_editor_shows_only_the_crypto_fields_the_encryption_uses(tui: Tui) -> None:
    add_x25519(tui)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await editor.show_group("crypto")
        await pilot.pause()

        def shown() -> set[str]:
            return {
                name
                for name in X25519_ONLY | NOT_X25519
                if editor.query_one(f"#row-{name}").display
            }

        assert shown() == {"server_public_key", "x25519"}
        editor.query_one("#f-encryption", Select).value = "rijndael"
        await pilot.pause()
        assert shown() == set(NOT_X25519)
        assert editor.query_one("#f-server_public_key", Input).value, "a hidden value is kept"
        editor.query_one("#f-encryption", Select).value = "x25519"
        await pilot.pause()
        assert shown() == {"server_public_key", "x25519"}
        assert not editor.changed


async def test_the_stanza_of_an_x25519_profile_shows_its_public_key_unmasked(tui: Tui) -> None:
    key = add_x25519(tui)
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, StanzaScreen), what="the stanza")
        screen = app.screen
        shown = text_of(screen.query_one("#stanza-text"))
        assert key.public_key.to_text() in shown and "•" not in shown
        assert "only public keys" in text_of(screen.query_one(".help"))
        assert screen.query_one("#reveal", Button).disabled
        assert key.to_text() not in shown


def test_mask_keys_still_hides_every_secret_key_line() -> None:
    stanza = (
        "SOURCE                      ANY\nKEY_BASE64                  c2VjcmV0\n"
        "HMAC_KEY_BASE64             aG1hYw==\nCLIENT_PUBLIC_KEY           x25519-pub:AAAA\n"
    )
    masked = mask_keys(stanza)
    assert "c2VjcmV0" not in masked and "aG1hYw==" not in masked
    assert "x25519-pub:AAAA" in masked
    assert holds_secrets(stanza)
    assert not holds_secrets("SOURCE ANY\nCLIENT_PUBLIC_KEY x25519-pub:AAAA\n")


async def test_share_of_an_x25519_profile_is_its_public_key_with_no_warning(
    tui: Tui, tmp_path: Path
) -> None:
    key = add_x25519(tui)
    expected = tui.wallet.share_text("home")
    assert expected.split() == ["CLIENT_PUBLIC_KEY", key.public_key.to_text()]
    app = tui.app()
    async with app.run_test(size=(140, 60)) as pilot:
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, ShareScreen) and screen.public
        assert not screen.query(".warning")
        assert "sharing it is harmless" in text_of(screen.query_one(".help"))
        await press_button(pilot, "#show")
        await wait_until(pilot, lambda: screen.query(QrCode), what="the QR code")
        if shutil.which("zbarimg") is None:
            pytest.skip("zbarimg (zbar-tools) is not installed")
        out = tmp_path / "public.png"
        screen.query_one("#export-path", Input).value = str(out)
        await press_button(pilot, "#png")
        await wait_until(
            pilot, lambda: any(n.startswith("Saved: ") for n in notices(app)), what="the PNG"
        )
        decoded = subprocess.run(
            ["zbarimg", "--raw", "-q", str(out)], capture_output=True, check=True, timeout=60
        ).stdout.decode()
    assert decoded.rstrip("\n") == expected
    assert key.to_text() not in decoded


async def test_a_knock_with_an_x25519_profile_opens_on_the_servers_keyring(tui: Tui) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        key = add_x25519(tui, port=sock.getsockname()[1], access=["tcp/2222"])
        app = tui.app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("k")
            main = main_of(app)
            await wait_until(pilot, lambda: "home" in main.last, what="the knock")
            assert main.last["home"].ok, main.last["home"].summary
            data = sock.recv(2048)
    ring = X25519Keyring(SERVER, [(key.public_key, "home")])
    opened = ring.open(data, max_age=120)  # the knock stamps real time, not the display clock
    assert opened.message.access[0].port == 2222


def test_the_profile_summary_names_the_mode() -> None:
    profile = Profile.from_table(
        "p",
        {
            "host": "h",
            "server_type": "fwknop-tui",
            "encryption": "x25519",
            "server_public_key": SERVER.public_key.to_text(),
        },
    )
    lines = dict(summary_lines(profile))
    assert lines["Crypto"] == "x25519 public keys, ChaCha20-Poly1305"
    assert lines["Keys"] == "OS keyring (x25519 private key)"
