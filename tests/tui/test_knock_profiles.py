"""A fwknop 1.x knock-sequence profile knocks from the TUI like an SPA profile."""

from __future__ import annotations

from fwknop_tui.ui.widgets.profile_table import destination, ports, transport
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


async def test_a_sequence_shows_its_knocks_as_they_go_out(tui: Tui) -> None:
    from fwknop_tui.ui.widgets.knock_view import KnockView
    from fwknop_tui.ui.widgets.status_line import StatusLine

    from .conftest import text_of

    with udp_sinks(3) as socks:
        steps = [f"udp/{s.getsockname()[1]}" for s in socks]
        # a long delay: the knock waits after its first knock until the test lets it go
        table = {"host": "127.0.0.1", "mode": "knock", "knock_sequence": steps, "knock_delay": 60}
        tui.wallet.add(Profile.from_table("old", table), keys={})
        app = tui.app()
        async with app.run_test(size=SIZE) as pilot:
            main = main_of(app)
            await pilot.press("k")
            await wait_until(
                pilot,
                lambda: main.states["old"].progress == (1, 3),
                what="the first knock's progress",
            )
            await pilot.pause()
            assert socks[0].recv(8) == b"0"
            assert "1 of 3 knocks sent" in text_of(main.query_one(KnockView))
            assert "old: knocking, 1 of 3 knocks sent" in main.query_one(StatusLine).text
            main.cancels["old"].set()  # what quitting does: the knock stops between knocks
            await wait_until(pilot, lambda: "old" in main.last, what="the end of the knock")
            assert "1 of 3 knocks" in main.last["old"].stages[-1].detail
            assert "knocks sent" not in main.query_one(StatusLine).text


def test_the_detail_pane_describes_a_sequence_not_an_spa_packet() -> None:
    from fwknop_tui.ui.widgets.profile_detail import summary_lines

    shared = Profile.from_table(
        "old", {"host": "203.0.113.4", "mode": "knock", "knock_sequence": ["tcp/7001", "udp/7002"]}
    )
    lines = dict(summary_lines(shared))
    assert destination(shared) == "203.0.113.4"  # the list's column, too
    assert lines["Destination"] == "203.0.113.4"  # not :62201 over udp: the knocks go elsewhere
    assert lines["Sequence"] == "shared, 2 knocks 1 s apart: tcp/7001, udp/7002"
    assert (lines["Crypto"], lines["Keys"]) == ("none: the sequence itself is the secret", "none")
    encrypted = Profile.from_table(
        "enc", {"host": "h", "mode": "knock", "key_format": "passphrase", "access": ["tcp/22"]}
    )
    lines = dict(summary_lines(encrypted))
    assert lines["Requests"] == "tcp/22" and lines["Sequence"].startswith("encrypted (1.x)")
    assert "HMAC" not in lines["Crypto"]
