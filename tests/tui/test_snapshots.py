"""A snapshot of every screen (pytest-textual-snapshot); update only after looking at them.

The wallet holds fixed, obviously fake keys (all zero bytes) and a fixed
history, and the clock is fixed, so a snapshot changes only when the UI does.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from fwknop_core import generate_keys
from fwknop_tui.history import KnockRecord, StageRecord
from fwknop_tui.ui.screens.importer import ImportScreen
from fwknop_tui.ui.screens.share import ShareScreen
from fwknop_tui.ui.widgets.qr_code import QrCode
from fwknop_tui.wallet.keys import encode_stored
from fwknop_tui.wallet.profiles import Profile

from .conftest import FIXED_NOW, Tui, wait_until

SIZE = (120, 36)
FAKE = generate_keys(rng=bytes)  # all zero: a key nobody uses


def wallet_with_profiles(tui: Tui) -> None:
    """Three profiles, fake keys, and a knock history."""
    keys = {
        "rijndael": encode_stored(FAKE.rijndael.secret),
        "hmac": encode_stored(FAKE.hmac.secret),
    }
    for name, table in (
        ("home", {"host": "spa.example.org", "access": ["tcp/22"], "verify": "spa.example.org:22"}),
        ("lab", {"host": "198.51.100.20", "port": 40001, "transport": "tcp",
                 "access": ["tcp/22", "tcp/443"], "client_timeout": 120}),
        ("vps-1", {"host": "2001:db8::10", "access": ["udp/51820"], "description": "WireGuard"}),
    ):  # fmt: skip
        tui.wallet.add(Profile.from_table(name, table), keys=keys)
    ok = (
        StageRecord("keys", True, 0.0004, "keyring"),
        StageRecord("resolve", True, 0.0121, "spa.example.org is 203.0.113.5; allow 0.0.0.0"),
        StageRecord("build", True, 0.0032, "Access msg, 204 characters"),
        StageRecord("send", True, 0.0002, "udp to 203.0.113.5 port 62201"),
        StageRecord("verify", True, 0.2410, "spa.example.org:22 open after 2 attempt(s)"),
    )
    tui.history.append(
        KnockRecord("home", FIXED_NOW - 125, True, 0.2569,
                    "Access msg for tcp/22: sent udp to 203.0.113.5 port 62201; "
                    "spa.example.org:22 open after 2 attempt(s)", ok)
    )  # fmt: skip
    why = "cannot resolve 198.51.100.20: timed out"
    failed = (
        StageRecord("keys", True, 0.0003, "keyring"),
        StageRecord("resolve", False, 0.03, why),
    )
    tui.history.append(KnockRecord("lab", FIXED_NOW - 7200, False, 0.0304, why, failed))


@pytest.fixture
def profiles(tui: Tui) -> Tui:
    wallet_with_profiles(tui)
    return tui


def test_main_screen(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), terminal_size=SIZE)


def test_main_screen_with_a_failed_knock_selected(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), press=["down"], terminal_size=SIZE)


def test_main_screen_filtered(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), press=["slash", *"wire"], terminal_size=SIZE)


def test_main_screen_empty(snap_compare: Any, tui: Tui) -> None:
    assert snap_compare(tui.app(), terminal_size=SIZE)


def test_first_run(snap_compare: Any, tui: Tui) -> None:
    assert snap_compare(tui.app(first_run=True), terminal_size=SIZE)


def test_editor_new_profile(snap_compare: Any, tui: Tui) -> None:
    assert snap_compare(tui.app(), press=["n", *"office"], terminal_size=SIZE)


def test_editor_crypto_tab_with_problems(snap_compare: Any, profiles: Tui) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("e")
        await pilot.pause()
        editor = pilot.app.screen
        editor.query_one("#groups").active = "tab-crypto"  # type: ignore[attr-defined]
        editor.query_one("#f-encryption_mode", Select).value = "legacy"
        editor.query_one("#k-rijndael", Input).value = "not base64!"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(profiles.app(), run_before=run_before, terminal_size=SIZE)


def test_editor_access_tab(snap_compare: Any, profiles: Tui) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "e")
        await pilot.pause()
        pilot.app.screen.query_one("#groups").active = "tab-access"  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(profiles.app(), run_before=run_before, terminal_size=SIZE)


def test_share_warning(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), press=["s"], terminal_size=SIZE)


def test_share_qr_code(snap_compare: Any, profiles: Tui) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("s")
        await pilot.click("#show")
        screen = pilot.app.screen
        assert isinstance(screen, ShareScreen)
        await wait_until(pilot, lambda: screen.query(QrCode), what="the QR code")
        await pilot.pause()

    assert snap_compare(profiles.app(), run_before=run_before, terminal_size=(120, 56))


def test_import_rc_preview(snap_compare: Any, tui: Tui) -> None:
    rc = tui.root / "fwknoprc"
    rc.write_text(
        "[default]\nSPA_SERVER_PROTO udp\n\n[office]\nSPA_SERVER 203.0.113.9\nACCESS tcp/22\n"
        f"KEY_BASE64 {FAKE.rijndael.to_base64()}\nHMAC_KEY_BASE64 {FAKE.hmac.to_base64()}\n"
        "USE_HMAC Y\n\n[nokey]\nSPA_SERVER 203.0.113.10\nFAVOURITE_COLOUR blue\n"
    )

    async def run_before(pilot: Pilot[Any]) -> None:
        # the preview of a file at a fixed path (a temporary one would differ every run)
        await pilot.press("i")
        screen = pilot.app.screen
        assert isinstance(screen, ImportScreen)
        screen.query_one("#rc-path", Input).value = "~/.fwknoprc"
        screen._show_plan(tui.wallet.plan_rc_import(rc.read_text(), "~/.fwknoprc"))
        await pilot.pause()

    assert snap_compare(tui.app(), run_before=run_before, terminal_size=SIZE)


def test_import_share_text(snap_compare: Any, profiles: Tui) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("i")
        screen = pilot.app.screen
        screen.query_one("#import-tabs").active = "tab-share"  # type: ignore[attr-defined]
        await pilot.pause()
        screen.query_one("#share-text", Input).value = FAKE.as_text().replace("\n", " ")
        screen.query_one("#share-name", Input).value = "phone"
        screen.query_one("#share-host", Input).value = "spa.example.org"
        await pilot.pause()

    assert snap_compare(profiles.app(), run_before=run_before, terminal_size=SIZE)


def test_stanza(snap_compare: Any, profiles: Tui) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("t")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "StanzaScreen")
        await pilot.pause()

    assert snap_compare(profiles.app(), run_before=run_before, terminal_size=SIZE)


def test_confirm_delete(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), press=["delete"], terminal_size=SIZE)


def test_help(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), press=["f1"], terminal_size=SIZE)


def test_command_palette(snap_compare: Any, profiles: Tui) -> None:
    assert snap_compare(profiles.app(), press=["ctrl+p", *"knock"], terminal_size=SIZE)


def test_ask_allow_ip(snap_compare: Any, tui: Tui) -> None:
    keys = {
        "rijndael": encode_stored(FAKE.rijndael.secret),
        "hmac": encode_stored(FAKE.hmac.secret),
    }
    tui.wallet.add(Profile.from_table("roaming", {"host": "h", "allow_ip": "ask"}), keys=keys)
    assert snap_compare(tui.app(), press=["k"], terminal_size=SIZE)
