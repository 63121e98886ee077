"""Client tests: every test gets its own config directory and never the real keyring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_tui.wallet.secrets import MemoryStore
from tests.helpers.environment import private_client_env

# real_fwknop, namespaces and session (a private Secret Service) come from tests/conftest.py
__all__ = ["memory", "private_config"]


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary FWKNOP_TUI_CONFIG_DIR and HOME; no keyring backend is discovered."""
    yield private_client_env(tmp_path, monkeypatch)


@pytest.fixture
def memory() -> MemoryStore:
    """An in-memory secret store."""
    return MemoryStore()
