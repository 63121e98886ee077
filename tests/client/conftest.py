"""Client tests: every test gets its own config directory and never the real keyring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_tui.wallet.secrets import MemoryStore
from tests.helpers.secret_service import SecretServiceSession, secret_service, unavailable_reason

# real_fwknop and namespaces come from tests/conftest.py
__all__ = ["memory", "private_config", "session"]


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary FWKNOP_TUI_CONFIG_DIR and HOME; no keyring backend is discovered."""
    config = tmp_path / "config"
    monkeypatch.setenv("FWKNOP_TUI_CONFIG_DIR", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    yield config


@pytest.fixture
def memory() -> MemoryStore:
    """An in-memory secret store."""
    return MemoryStore()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[SecretServiceSession]:
    """A private, unlocked Secret Service (skips, and fails in CI, where it cannot start)."""
    if reason := unavailable_reason():
        pytest.skip(reason)
    with secret_service(tmp_path / "ss") as started:
        yield started
