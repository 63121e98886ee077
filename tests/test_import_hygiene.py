"""Headless modules never load Textual, and the core loads no I/O machinery.

import-linter checks the import graph statically; this checks what really
ends up in ``sys.modules``, which also catches imports hidden in code that
runs at import time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(*modules: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(res.stdout))


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


HEADLESS = [
    "fwknop_tui.cli",
    "fwknop_tui.send",
    "fwknop_tui.sequence",
    "fwknop_tui.qr",
    "fwknop_tui.completion",
    "fwknop_tui.wallet",
    "fwknop_tui.wallet.profiles",
    "fwknop_tui.wallet.secrets",
    "fwknop_tui.wallet.keys",
    "fwknop_tui.wallet.rc",
    "fwknop_tui.wallet.validate",
    "fwknop_tui.demo",
    "fwknop_tui.history",
    "fwknop_tui.probe",
    "fwknop_tui.connect",
    "fwknop_tui.ui.knocking",
]


@pytest.mark.parametrize(
    "module",
    ["fwknop_core", *HEADLESS, "fwknop_server.cli", "fwknop_server.daemon", "fwknop_server.knock"],
)
def test_headless_modules_do_not_load_textual(module: str) -> None:
    loaded = _top(_loaded_after(module))
    assert "textual" not in loaded
    assert "rich" not in loaded


def test_core_loads_no_io_machinery() -> None:
    loaded = _top(_loaded_after("fwknop_core"))
    assert not loaded & {"socket", "asyncio", "subprocess", "gnupg", "keyring", "platformdirs"}


def test_server_never_loads_the_client() -> None:
    loaded = _top(_loaded_after("fwknop_server.cli", "fwknop_server.daemon"))
    assert "fwknop_tui" not in loaded


def test_send_path_loads_no_heavy_optional_modules() -> None:
    """``fwknop send`` must not pay for writing, QR, keyring discovery or the TUI."""
    names = _loaded_after("fwknop_tui.cli", "fwknop_tui.send", "fwknop_tui.wallet")
    assert not _top(names) & {"textual", "rich", "tomlkit", "qrcode", "keyring", "gnupg"}
    assert not names & {"urllib.request", "http.client", "ssl", "subprocess", "tempfile"}
