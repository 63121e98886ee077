"""The TUI's verify uses the client's: a port open before the knock proves nothing (issue 13)."""

from __future__ import annotations

import socket

from .conftest import Tui, wait_until
from .test_flows import SIZE, add_profile, main_of


async def test_a_port_already_open_is_not_called_verified(tui: Tui) -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        add_profile(tui, "open", verify=f"127.0.0.1:{srv.getsockname()[1]}")
        app = tui.app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            main = main_of(app)
            await wait_until(pilot, lambda: "open" in main.last, what="the knock")
            record = main.last["open"]
            assert record.ok
            assert "already open before the knock" in record.stages[-1].detail
            outcome = main.states["open"].outcome
            assert "was already open before the knock: the verify proves nothing" in outcome
            assert "the port answered" not in outcome
