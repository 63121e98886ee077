"""The PID file: a lock that proves one instance runs, and how -K, -R and -S find it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from .runfiles import open_private

__all__ = ["AlreadyRunning", "PidFile", "running_pid"]


class AlreadyRunning(Exception):  # noqa: N818 - reads as a sentence: raise AlreadyRunning
    """Another fwknopd holds the lock."""


class PidFile:
    """Held for the daemon's lifetime: locked, holding our PID, removed at exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Lock the file and write our PID; ``AlreadyRunning`` if someone else has it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)  # never through a symbolic link
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = running_pid(self.path)
            raise AlreadyRunning(f"fwknopd is already running (pid {pid}, {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Remove and unlock (at exit)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def running_pid(path: Path) -> int | None:
    """The PID of the fwknopd holding ``path``'s lock, or None if none does."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.lockf(fd, fcntl.LOCK_UN)  # nobody held it: a stale file
        return None
    finally:
        os.close(fd)
