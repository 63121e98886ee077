"""A private environment for the client and the TUI: config dir, HOME, no keyring discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["private_client_env"]


def private_client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point FWKNOP_TUI_CONFIG_DIR, HOME and the cache at ``tmp_path``; no real keyring."""
    config = tmp_path / "config"
    monkeypatch.setenv("FWKNOP_TUI_CONFIG_DIR", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    return config
