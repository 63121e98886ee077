"""Every screen of the TUI as a scenario: the snapshot tests and the screenshot script share them.

A scenario fills a wallet (fixed, obviously fake keys: all zero bytes), then
drives the app with Pilot to the screen it shows. The clock is fixed, so a
snapshot changes only when the UI does. Every scenario is taken at 80x24
(the classic terminal: everything must be usable there) and at 200x50 (the
room must be used). ``live`` scenarios (the demo) run a real server and are
for screenshots only: their ports and timings differ every run.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from textual.pilot import Pilot
from textual.reactive import reactive
from textual.widgets import Input, Select

from fwknop_core import X25519PrivateKey, generate_keys
from fwknop_tui.history import KnockRecord, StageRecord
from fwknop_tui.wallet.keys import encode_stored
from fwknop_tui.wallet.profiles import Profile

from .conftest import FIXED_NOW, Tui, press_button, wait_until

FAKE = generate_keys(rng=bytes)  # all zero: a key nobody uses
FAKE_STORED = {
    "rijndael": encode_stored(FAKE.rijndael.secret),
    "hmac": encode_stored(FAKE.hmac.secret),
}
SIZES = ((80, 24), (200, 50))

Action = Callable[[Pilot[Any]], Awaitable[None]]


def hold_cursors() -> reactive[bool]:
    """Stop Input cursors blinking (so images do not depend on when they are taken).

    Returns the reactive that was there before, for a fixture to put back.
    """
    before: reactive[bool] = Input.__dict__["cursor_blink"]
    still: reactive[bool] = reactive(False, init=False)
    still.__set_name__(Input, "cursor_blink")
    Input.cursor_blink = still  # type: ignore[assignment]
    return before


def profiles(tui: Tui) -> None:
    """Three profiles with fake keys, and a knock history."""
    for name, table in (
        ("home", {"host": "spa.example.org", "access": ["tcp/22"], "verify": "spa.example.org:22"}),
        (
            "lab",
            {
                "host": "198.51.100.20",
                "port": 40001,
                "transport": "tcp",
                "access": ["tcp/22", "tcp/443"],
                "client_timeout": 120,
            },
        ),
        ("vps-1", {"host": "2001:db8::10", "access": ["udp/51820"], "description": "WireGuard"}),
    ):
        tui.wallet.add(Profile.from_table(name, table), keys=FAKE_STORED)
    ok = (
        StageRecord("keys", True, 0.0004, "keyring"),
        StageRecord("resolve", True, 0.0121, "spa.example.org is 203.0.113.5; allow 0.0.0.0"),
        StageRecord("build", True, 0.0032, "Access msg, 204 characters"),
        StageRecord("send", True, 0.0002, "udp to 203.0.113.5 port 62201"),
        StageRecord("verify", True, 0.2410, "spa.example.org:22 open after 2 attempt(s)"),
    )
    summary = (
        "Access msg for tcp/22: sent udp to 203.0.113.5 port 62201; "
        "spa.example.org:22 open after 2 attempt(s)"
    )
    tui.history.append(KnockRecord("home", FIXED_NOW - 125, True, 0.2569, summary, ok))
    why = "cannot resolve 198.51.100.20: timed out"
    failed = (
        StageRecord("keys", True, 0.0003, "keyring"),
        StageRecord("resolve", False, 0.03, why),
    )
    tui.history.append(KnockRecord("lab", FIXED_NOW - 7200, False, 0.0304, why, failed))


# fixed x25519 keys (obviously fake: counting bytes), so the public keys shown never change
X25519_SERVER = X25519PrivateKey(bytes(range(32)))
X25519_CLIENT = X25519PrivateKey(bytes(range(32, 64)))


def x25519(tui: Tui) -> None:
    """The three profiles, and one in fwknop-tui's x25519 mode (our fwknopd; public keys)."""
    profiles(tui)
    table = {
        "host": "vault.example.net",
        "access": ["tcp/22"],
        "server_type": "fwknop-tui",
        "encryption": "x25519",
        "server_public_key": X25519_SERVER.public_key.to_text(),
        "description": "x25519: no shared secret",
    }
    tui.wallet.add(Profile.from_table("vault", table), keys={"x25519": X25519_CLIENT.to_text()})
    tui.history.append(
        KnockRecord(
            "vault",
            FIXED_NOW - 40,
            True,
            0.0112,
            "Access msg for tcp/22: sent udp to 203.0.113.7 port 62201 (x25519)",
            (
                StageRecord("keys", True, 0.0004, "keyring"),
                StageRecord("resolve", True, 0.0081, "vault.example.net is 203.0.113.7"),
                StageRecord("build", True, 0.0025, "x25519 packet, 180 characters"),
                StageRecord("send", True, 0.0002, "udp to 203.0.113.7 port 62201"),
            ),
        )
    )


def _select(name: str, then: Action | None = None) -> Action:
    """Select the profile ``name`` in the list (then do ``then``)."""

    async def run(pilot: Pilot[Any]) -> None:
        from fwknop_tui.ui.widgets.profile_table import ProfileTable

        pilot.app.main_screen.query_one(ProfileTable).select_name(name)  # type: ignore[attr-defined]
        await pilot.pause()
        if then is not None:
            await then(pilot)

    return run


def nothing(tui: Tui) -> None:
    """An empty wallet."""


def rc_file(tui: Tui) -> None:
    """A ~/.fwknoprc to import (at a fixed path in the scenario's text)."""
    (tui.root / "fwknoprc").write_text(
        "[default]\nSPA_SERVER_PROTO udp\n\n[office]\nSPA_SERVER 203.0.113.9\nACCESS tcp/22\n"
        f"KEY_BASE64 {FAKE.rijndael.to_base64()}\nHMAC_KEY_BASE64 {FAKE.hmac.to_base64()}\n"
        "USE_HMAC Y\n\n[nokey]\nSPA_SERVER 203.0.113.10\nFAVOURITE_COLOUR blue\n"
    )


def roaming(tui: Tui) -> None:
    """A profile that asks for the address to allow."""
    tui.wallet.add(
        Profile.from_table("roaming", {"host": "spa.example.org", "allow_ip": "ask"}),
        keys=FAKE_STORED,
    )


async def settle(pilot: Pilot[Any]) -> None:
    """Let layout, idle work (a DataTable sizes its columns when idle) and animations end."""
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)
    await pilot.pause()


def settled(action: Action) -> Action:
    """``action``, then ``settle``: what a picture of the screen should wait for."""

    async def run(pilot: Pilot[Any]) -> None:
        await action(pilot)
        await settle(pilot)

    return run


async def _opened(pilot: Pilot[Any], screen: str) -> None:
    """Wait until the dialog ``screen`` (a class name) is up and has settled."""
    await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == screen, what=screen)
    await pilot.pause()


async def _editor_crypto_problems(pilot: Pilot[Any]) -> None:
    await pilot.press("e")
    await _opened(pilot, "EditorScreen")
    editor = pilot.app.screen
    await editor.show_group("crypto")  # type: ignore[attr-defined]
    editor.query_one("#f-encryption_mode", Select).value = "legacy"
    editor.query_one("#k-rijndael", Input).value = "not base64!"
    await pilot.press("ctrl+s")
    await pilot.pause()


def _editor_tab(group: str, *keys: str) -> Action:
    async def run(pilot: Pilot[Any]) -> None:
        await pilot.press(*keys, "e")
        await _opened(pilot, "EditorScreen")
        await pilot.app.screen.show_group(group)  # type: ignore[attr-defined]
        await pilot.pause()

    return run


async def _editor_discard(pilot: Pilot[Any]) -> None:
    await pilot.press("n", *"office")
    await _opened(pilot, "EditorScreen")
    await pilot.press("escape")
    await _opened(pilot, "ConfirmScreen")


def broken(tui: Tui) -> None:
    """A profiles.toml that is not TOML (under HOME: shown from ~, the same every run)."""
    os.environ["HOME"] = str(tui.root)  # the test fixture puts the old HOME back
    path = tui.root / "config" / "profiles.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[profiles.home]\nhost = "spa.example.org"\n\n[profiles.lab]\nhost = \n')


async def _keeping_open(pilot: Pilot[Any]) -> None:
    """Keep open running for two profiles (set as the keep-open key does, without a knock:
    a real one's timings would differ every run)."""
    main = pilot.app.main_screen  # type: ignore[attr-defined]
    main.keep_open.update({"home": FIXED_NOW + 14, "lab": FIXED_NOW + 95})
    main._tick()
    await pilot.pause()


def sequence(tui: Tui) -> None:
    """The three profiles, and a router that only takes a fwknop 1.x shared knock sequence."""
    profiles(tui)
    steps = [f"tcp/{port}" for port in (7001, 7341, 7002, 8123, 7003, 9999)]
    table = {"host": "203.0.113.44", "mode": "knock", "knock_sequence": steps, "knock_delay": 2}
    tui.wallet.add(Profile.from_table("router", table), keys={})


async def _sequence_knocking(pilot: Pilot[Any]) -> None:
    """The router's sequence half sent (set as the knock's messages do: a real one's timings
    would differ every run)."""
    from fwknop_tui.ui.widgets.knock_view import KnockState
    from fwknop_tui.ui.widgets.profile_table import ProfileTable

    main = pilot.app.main_screen  # type: ignore[attr-defined]
    main.query_one(ProfileTable).select_name("router")
    done = (
        StageRecord("keys", True, 0.00001, "none needed"),
        StageRecord("resolve", True, 0.0001, "203.0.113.44 is 203.0.113.44; allow 0.0.0.0"),
        StageRecord("build", True, 0.0001, "shared sequence of 6 knocks"),
    )
    state = KnockState("router", ("keys", "resolve", "build", "send"), done, when=FIXED_NOW)
    main.states["router"] = state.with_progress(3, 6)
    main.running.add("router")
    main.latest = "router"
    main._refresh_row("router")
    await pilot.pause()


async def _share_qr(pilot: Pilot[Any]) -> None:
    from fwknop_tui.ui.widgets.qr_code import QrCode

    await pilot.press("s")
    await _opened(pilot, "ShareScreen")
    await press_button(pilot, "#show")
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.query(QrCode), what="the QR code")
    await pilot.pause()


def _import_rc(tui: Tui) -> Action:
    async def run(pilot: Pilot[Any]) -> None:
        # the preview of a file at a fixed path (a temporary one would differ every run)
        from textual.widgets import DataTable

        from fwknop_tui.ui.screens.importer import ImportScreen

        await pilot.press("i")
        await wait_until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, ImportScreen)
                and pilot.app.screen.query_one("#rc-plan", DataTable).columns
            ),
            what="the import screen",
        )
        screen = pilot.app.screen
        screen.query_one("#rc-path", Input).value = "~/.fwknoprc"
        plans = tui.wallet.plan_rc_import((tui.root / "fwknoprc").read_text(), "~/.fwknoprc")
        screen._show_plan(plans)  # type: ignore[attr-defined]
        table = screen.query_one("#rc-plan", DataTable)
        # the table sizes its columns to the rows when idle: wait for that, not a fixed time
        await wait_until(
            pilot,
            lambda: any(c.content_width > len(str(c.label)) for c in table.columns.values()),
            what="the preview's columns",
        )

    return run


async def _import_share(pilot: Pilot[Any]) -> None:
    await pilot.press("i")
    await _opened(pilot, "ImportScreen")
    screen = pilot.app.screen
    screen.query_one("#import-tabs").active = "tab-share"  # type: ignore[attr-defined]
    await pilot.pause()
    screen.query_one("#share-text", Input).value = FAKE.as_text().replace("\n", " ")
    screen.query_one("#share-name", Input).value = "phone"
    screen.query_one("#share-host", Input).value = "spa.example.org"
    await pilot.pause()


async def _stanza(pilot: Pilot[Any]) -> None:
    await pilot.press("t")
    await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "StanzaScreen")
    await pilot.pause()


async def _demo(pilot: Pilot[Any]) -> None:
    main = pilot.app.main_screen  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: "demo" in main.last, timeout=30, what="the demo knock")
    await pilot.pause(0.5)


def _keys(*keys: str) -> Callable[[Tui], Action]:
    def make(_tui: Tui) -> Action:
        async def run(pilot: Pilot[Any]) -> None:
            await pilot.press(*keys)
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

        return run

    return make


def _run(action: Action) -> Callable[[Tui], Action]:
    return lambda _tui: action


@dataclass(frozen=True)
class Scenario:
    """A named screen: how to fill the wallet, what to do, the terminal size."""

    name: str
    title: str
    setup: Callable[[Tui], None]
    action: Callable[[Tui], Action]
    sizes: tuple[tuple[int, int], ...] = SIZES
    app_options: dict[str, Any] = field(default_factory=dict)
    live: bool = False


SCENARIOS = (
    Scenario("main", "Profiles, the selected one, its last knock, the log", profiles, _keys()),
    Scenario("main-failed", "A failed knock: the stage and the reason", profiles, _keys("down")),
    Scenario("main-filtered", "Filter as you type", profiles, _keys("slash", *"wire")),
    Scenario("main-empty", "No profiles yet", nothing, _keys()),
    Scenario(
        "first-run",
        "First run: the demo offered",
        nothing,
        _keys(),
        app_options={"first_run": True},
    ),
    Scenario(
        "main-keep-open",
        "Keep open: the countdown and the last outcome on the status line",
        profiles,
        _run(_keeping_open),
    ),
    Scenario(
        "main-sequence",
        "A 1.x knock sequence going out: knocks sent of total",
        sequence,
        _run(_sequence_knocking),
    ),
    Scenario("main-broken", "A broken profiles.toml: a banner with file and line", broken, _keys()),
    Scenario("editor-new", "The editor: a new profile", nothing, _keys("n", *"office")),
    Scenario(
        "editor-access",
        "The editor: access settings",
        profiles,
        _run(_editor_tab("access", "down")),
    ),
    Scenario("editor-crypto", "The editor: crypto settings", profiles, _run(_editor_tab("crypto"))),
    Scenario("editor-gnupg", "The editor: GnuPG settings", profiles, _run(_editor_tab("gnupg"))),
    Scenario(
        "editor-advanced", "The editor: advanced settings", profiles, _run(_editor_tab("advanced"))
    ),
    Scenario(
        "editor-discard", "Leaving a changed draft asks first", nothing, _run(_editor_discard)
    ),
    Scenario(
        "editor-problems",
        "The editor: problems named inline",
        profiles,
        _run(_editor_crypto_problems),
    ),
    Scenario("share-warning", "Sharing: the warning first", profiles, _keys("s")),
    Scenario("share-qr", "Sharing: the Fwknop2 QR code (fake keys)", profiles, _run(_share_qr)),
    Scenario("import-rc", "Import ~/.fwknoprc: the preview", rc_file, _import_rc),
    Scenario("import-share", "Import shared keys (masked)", profiles, _run(_import_share)),
    Scenario("stanza", "The server's access.conf stanza, keys masked", profiles, _run(_stanza)),
    Scenario("confirm-delete", "Deleting asks first", profiles, _keys("delete")),
    Scenario("help", "Help: every key, as mapped", profiles, _keys("f1")),
    Scenario("palette", "The command palette", profiles, _keys("ctrl+p", *"knock")),
    Scenario("ask-allow-ip", "Allow IP 'ask'", roaming, _keys("k")),
    Scenario(
        "main-x25519",
        "An x25519 profile: public keys, no shared secret",
        x25519,
        _run(_select("vault")),
    ),
    Scenario(
        "editor-x25519",
        "The editor: an x25519 profile's crypto settings",
        x25519,
        _run(_select("vault", _editor_tab("crypto"))),
    ),
    Scenario(
        "share-x25519",
        "Sharing an x25519 profile: its public key, nothing secret",
        x25519,
        _run(_select("vault", _share_qr)),
    ),
    Scenario(
        "stanza-x25519",
        "The stanza of an x25519 profile: public keys only",
        x25519,
        _run(_select("vault", _stanza)),
    ),
    Scenario(
        "demo",
        "The demo: a knock on our fwknopd, accepted",
        nothing,
        _run(_demo),
        app_options={"demo": True},
        live=True,
    ),
)
