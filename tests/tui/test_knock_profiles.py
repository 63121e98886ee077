"""A fwknop 1.x knock-sequence profile knocks from the TUI like an SPA profile."""

from __future__ import annotations

from fwknop_tui.ui.widgets.profile_table import ports, transport
from fwknop_tui.wallet.keys import encode_stored
from fwknop_tui.wallet.profiles import Profile
from tests.helpers.udp_sinks import udp_sinks

from .conftest import Tui, wait_until
from .test_flows import SIZE, main_of


async def test_a_shared_sequence_profile_knocks_from_the_tui(tui: Tui) -> None:
    with udp_sinks(3) as socks:
        steps = [f"udp/{s.getsockname()[1]}" for s in socks]
        table = {"host": "127.0.0.1", "mode": "knock", "knock_sequence": steps, "knock_delay": 0}
        profile = Profile.from_table("old", table)
        assert (transport(profile), ports(profile)) == ("shared seq", ",".join(steps))
        tui.wallet.add(profile, keys={})
        app = tui.app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("k")
            main = main_of(app)
            await wait_until(pilot, lambda: "old" in main.last, what="the knock")
            record = main.last["old"]
            assert record.ok, record.summary
            assert [s.stage for s in record.stages] == ["keys", "resolve", "build", "send"]
            assert "3 of 3 knocks" in record.stages[-1].detail
        assert [s.recv(8) for s in socks] == [b"0", b"0", b"0"]


async def test_an_encrypted_sequence_profile_takes_its_key_from_the_keyring(tui: Tui) -> None:
    table = {
        "host": "127.0.0.1", "mode": "knock", "key_format": "passphrase", "knock_delay": 0,
        "access": ["tcp/22"], "username": "root",
    }  # fmt: skip
    profile = Profile.from_table("enc", table)
    assert (transport(profile), ports(profile)) == ("1.x knock", "tcp/22")
    tui.wallet.add(profile, keys={"rijndael": encode_stored(b"testkey1")})
    app = tui.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        main = main_of(app)
        await wait_until(pilot, lambda: "enc" in main.last, what="the knock")
        record = main.last["enc"]
        assert record.ok, record.summary
        build = next(s for s in record.stages if s.stage == "build")
        assert build.detail == "encrypted sequence of 32 knocks"
        assert "32 of 32 knocks" in record.stages[-1].detail
