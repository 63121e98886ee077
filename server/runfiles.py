"""The run directory and the files fwknopd keeps there, opened so that no one else can aim them.

fwknopd runs as root and writes its PID file, replay cache and journal in
``FWKNOP_RUN_DIR``. If another user could write to that directory, they
could put a symbolic link where one of those files goes and have root
truncate or chmod any file it points to, or swap the replay cache for one
that forgets every packet. So the directory must belong to the user
fwknopd runs as (root, in service) and be writable by no one else; it is
created 0700 when missing, as fwknopd creates it. Each file is opened with
``O_NOFOLLOW`` (a symbolic link is refused, never followed), must be a
regular file, and gets its mode through the open descriptor (``fchmod``),
never through a path (a ``chmod`` follows links).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["UnsafePathError", "check_run_dir", "open_private"]

log = logging.getLogger("fwknop_server")


class UnsafePathError(OSError):
    """A run directory or run file that someone other than fwknopd's user could aim."""


def check_run_dir(path: Path) -> None:
    """Create ``path`` (0700) if missing; ``UnsafePathError`` unless only we can write to it."""
    if not path.exists():
        log.info("Run directory %s does not exist; creating it", path)
        path.mkdir(mode=0o700, parents=True)
    st = path.stat()
    euid = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"run directory {path} is not a directory")
    if st.st_uid != euid:
        raise UnsafePathError(
            f"run directory {path} belongs to uid {st.st_uid}, not to uid {euid} that fwknopd "
            "runs as: another user could replace its PID file and replay cache"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafePathError(
            f"run directory {path} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod go-w {path}"
        )


def open_private(path: Path, flags: int) -> int:
    """``os.open`` a run file: never through a symbolic link, a regular file, mode 0600."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError:
        if os.path.islink(path):
            raise UnsafePathError(f"{path} is a symbolic link: refused, never followed") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path} is not a regular file")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)  # through the descriptor: the file we opened, not a link's
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
