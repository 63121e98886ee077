"""Client tests: every test gets its own config directory and never the real keyring."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_tui.cli import main
from fwknop_tui.wallet.secrets import MemoryStore
from tests.helpers.environment import private_client_env

# real_fwknop, namespaces and session (a private Secret Service) come from tests/conftest.py
__all__ = ["Terminal", "memory", "private_config", "run_cli"]


class Terminal(io.StringIO):
    """Standard input that is a terminal a person types into."""

    def isatty(self) -> bool:
        """It is one."""
        return True


def run_cli(
    args: list[str], memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``fwknop ARGS`` in-process with ``memory`` as the keyring: exit code, stdout, stderr."""
    code = main(args, secrets=memory)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary FWKNOP_TUI_CONFIG_DIR and HOME; no keyring backend is discovered."""
    yield private_client_env(tmp_path, monkeypatch)


@pytest.fixture
def memory() -> MemoryStore:
    """An in-memory secret store."""
    return MemoryStore()
