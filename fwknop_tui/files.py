"""Files that hold keys: created 0600 from their first byte."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (mode 0600 from its first byte): a new file renamed over the old one.

    Truncating an existing file would keep its mode and its readers: someone who
    had a 0644 file open would read the keys. A fresh file is created 0600 in
    the same directory, filled, synced, then renamed into place.
    """
    import tempfile  # noqa: PLC0415

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
