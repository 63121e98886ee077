"""What ``fwknop-tui`` loads before its first frame: nothing the profile list does not use.

tests/bench/bench_tui.py measures the start; this pins a cause found there,
so it does not come back unnoticed: the keys, the packet code, the send
pipeline and with them cryptography are needed by a knock, a share or the
editor, not by the list of profiles and their last knocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fwknop_tui.history import KnockHistory, KnockRecord, StageRecord

FOR_A_KNOCK = {"cryptography", "fwknop_core._keys", "fwknop_core._packet", "fwknop_tui.send"}

CODE = """
import asyncio, json, sys
from fwknop_tui.ui.app import FwknopApp

seen = []

async def main():
    app = FwknopApp(first_run=False)
    quit = app.exit

    def exit(*args, **kwargs):  # FWKNOP_TUI_EXIT_WHEN_READY: right after the first frame
        if not seen:
            seen.extend([sorted(app.main_screen.profiles), sorted(sys.modules)])
        quit(*args, **kwargs)

    app.exit = exit
    async with app.run_test(size=(80, 24)) as pilot:
        while not seen:
            await pilot.pause(0.01)
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_the_first_frame_loads_no_key_or_packet_code(private_config: Path) -> None:
    private_config.mkdir(parents=True, exist_ok=True)
    (private_config / "profiles.toml").write_text(
        '[profiles.home]\nhost = "127.0.0.1"\naccess = ["tcp/22"]\n'
        '[profiles.old]\nhost = "127.0.0.1"\nmode = "knock"\nknock_sequence = ["tcp/7001"]\n'
    )
    failed = (StageRecord("keys", False, 0.001, "no Rijndael key"),)
    KnockHistory().append(KnockRecord("home", 1.0, False, 0.001, "no key", failed))
    env = os.environ | {"FWKNOP_TUI_EXIT_WHEN_READY": "1"}
    res = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=False
    )
    assert res.returncode == 0, res.stderr
    shown, modules = json.loads(res.stdout.splitlines()[-1])
    assert shown == ["home", "old"]
    loaded = {m for m in modules if m in FOR_A_KNOCK or m.startswith("cryptography.")}
    assert not loaded, sorted(loaded)
