"""The line syntax fwknopd.conf and access.conf share (server-config.md §1).

``NAME<whitespace>VALUE``: the value runs to the end of the line or the
first ``;``; a ``:`` right after the name is ignored; a line whose first
non-blank character is ``#`` or ``;`` is a comment, but a ``#`` later in a
line is part of the value. fwknopd 2.6.10 keeps trailing whitespace in a
value; we strip it, as later fwknopd versions do, because a key with an
invisible trailing space is never what an administrator meant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Setting", "is_yes", "read_settings"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``NAME VALUE`` line and where it came from."""

    name: str
    value: str
    path: Path
    line: int


def is_yes(value: str) -> bool:
    """fwknopd's booleans: a value starting with ``Y`` or ``y`` is yes, anything else no."""
    return value[:1] in ("Y", "y")


def read_settings(path: Path, text: str) -> Iterator[Setting]:
    """Every setting in ``text`` (the contents of ``path``), in order."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;\0":
            continue
        name, *rest = line.split(None, 1)
        value = rest[0].split(";", 1)[0].strip() if rest else ""
        name = name.rstrip(":")
        yield Setting(name, value, path, number)
