"""Files that hold a key are 0600 from their first byte (issue 11, item 13).

Replacing an existing world-readable file must not write the keys into it,
nor into a temporary file that carries its old mode: every byte of key
material is written to a file only its owner can open, and a reader that
opened the old file beforehand never sees the new content.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_tui import qr
from fwknop_tui.cli import main
from fwknop_tui.wallet.profiles import atomic_write
from fwknop_tui.wallet.secrets import MemoryStore


@pytest.fixture
def synced_modes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The mode of every regular file at the moment its content is fsync'ed."""
    seen: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            seen.append(stat.S_IMODE(st.st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    yield seen


def _world_readable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o644)
    return path


def test_export_rc_over_a_0644_file_never_writes_keys_to_a_readable_file(
    tmp_path: Path, synced_modes: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    memory = MemoryStore()
    assert main(["add", "lab", "-D", "198.18.0.1", "--keygen"], secrets=memory) == 0
    target = _world_readable(tmp_path / "fwknoprc", "[other]\nSPA_SERVER 198.18.0.9\n")
    with target.open() as watcher:  # another user who opened the old file in time
        assert main(["export-rc", "lab", "-o", str(target)], secrets=memory) == 0
        assert watcher.read() == "[other]\nSPA_SERVER 198.18.0.9\n"
    assert "KEY_BASE64" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert synced_modes and all(m & 0o077 == 0 for m in synced_modes), synced_modes
    capsys.readouterr()


@pytest.mark.parametrize("write", [qr.write_png, qr.write_svg])
def test_a_qr_file_over_a_0644_file_is_a_new_0600_file(
    tmp_path: Path, synced_modes: list[int], write: object
) -> None:
    target = _world_readable(tmp_path / "share.img", "old")
    with target.open("rb") as watcher:
        write("KEY_BASE64:c2VjcmV0IGtleSBieXRlcyBmb3IgdGhlIHRlc3Q= ", target)  # type: ignore[operator]
        assert watcher.read() == b"old"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert all(m & 0o077 == 0 for m in synced_modes), synced_modes


def test_a_file_without_secrets_keeps_its_mode(tmp_path: Path) -> None:
    target = _world_readable(tmp_path / "profiles.toml", "")
    atomic_write(target, "[profiles]\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    atomic_write(target, "[profiles]\n", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
