"""The line syntax fwknopd.conf and access.conf share (server-config.md §1).

``NAME<whitespace>VALUE``: the value runs to the end of the line or the
first ``;``; a ``:`` right after the name is ignored; a line whose first
non-blank character is ``#`` or ``;`` is a comment, but a ``#`` later in a
line is part of the value. fwknopd 2.6.10 keeps trailing whitespace in a
value; we strip it, as later fwknopd versions do, because a key with an
invisible trailing space is never what an administrator meant.

A line that is not a name and a value (``HMAC_KEY_BASE64:<key>``, with no
blank after the colon, or a name alone) is ``Invalid``: fwknopd refuses such
an access.conf ("Invalid access file entry") and skips such a fwknopd.conf
line with a warning; each loader decides. Its text is never shown: a key
glued to its name is still a key. Only ``shown_name`` of it is, the name as
far as it can be told from a value.

fwknop 1.x files (legacy-knock.md §7.1, §8.1) also hold ``NAME:value;``
with no blank after the colon and bare flags, ``ENCRYPT_SEQUENCE;``. Every
1.x line ends with ``;``, so only a line that does is read that way (its
name, a ``:`` right after it, and the value up to the first ``;``; a bare
flag the loader names has the empty value): ``KEY:testkey1;`` is read, while
``HMAC_KEY_BASE64:<key>`` without the ``;`` stays invalid. Two 1.x rules
are not kept, as 2.x fwknopd's are: a 1.x value ran to the *last* ``;`` of
its line and kept blanks before it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SECRET_NAMES",
    "Invalid",
    "Setting",
    "is_yes",
    "read_settings",
    "shown_name",
    "whole_number",
]

# names whose value is key material: never printed, wherever it turns up
SECRET_NAMES = ("HMAC_KEY_BASE64", "HMAC_KEY", "KEY_BASE64", "KEY", "GPG_DECRYPT_PW")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_%]*")
_MAX_SHOWN = 64
# a 1.x line: the name, a ':' right after it (dropped), blanks, the value up to the first ';'
_LINE_1X = re.compile(r"([^\s:;]+):?\s*([^;]*)")


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``NAME VALUE`` line and where it came from (its repr leaves the value out)."""

    name: str
    value: str = field(repr=False)
    path: Path
    line: int


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line that is not ``NAME VALUE``: where it is, and its name as far as it can be shown."""

    name: str  # shown_name of the line's first word: never any of its value
    path: Path
    line: int


def is_yes(value: str) -> bool:
    """fwknopd's booleans: a value starting with ``Y`` or ``y`` is yes, anything else no."""
    return value[:1] in ("Y", "y")


def shown_name(word: str) -> str:
    """What of a line's first word may be printed: its leading name characters, never a value.

    ``HMAC_KEY_BASE64:c2Vj...`` shows as ``HMAC_KEY_BASE64...``, and a key
    written against a secret-bearing name (``KEYsecret``) as ``KEY...``: the
    rest may be key material. Only ASCII letters, digits, ``_`` and ``%``
    are ever shown, so a message stays one printable line.
    """
    name = _NAME_CHARS.match(word)[0][:_MAX_SHOWN]  # type: ignore[index] # always matches
    upper = name.upper()
    for secret in SECRET_NAMES:  # longest first: HMAC_KEY_BASE64 before HMAC_KEY
        if upper.startswith(secret):
            name = name[: len(secret)]
            break
    return name if name == word else f"{name}..."


def whole_number(text: str) -> int | None:
    """``text`` as a whole number if it is one in ASCII digits (``²`` is a digit, not a number)."""
    return int(text) if text.isascii() and text.isdigit() else None


def read_settings(
    path: Path, text: str, invalid: list[Invalid], bare: Collection[str] = ()
) -> Iterator[Setting]:
    """Every setting in ``text`` (of ``path``), in order; lines that are none to ``invalid``.

    A 1.x line without a value (``ENCRYPT_SEQUENCE;``) is a setting with the
    empty value only for a name in ``bare`` (the loader's 1.x flags); any
    other name alone is invalid, as it is without the ``;``.
    """
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;\0":
            continue
        if line.endswith(";"):  # fwknop 1.x: every line ends with ';'
            match = _LINE_1X.match(line)
            if match is not None:
                value = match[2].strip()
                if value or match[1] in bare:
                    yield Setting(match[1], value, path, number)
                    continue
        name, *rest = line.split(None, 1)
        value = rest[0].split(";", 1)[0].strip() if rest else ""
        if not value:  # a name alone, or glued to its value: fwknopd's "invalid entry"
            invalid.append(Invalid(shown_name(name), path, number))
            continue
        name = name.rstrip(":")
        yield Setting(name, value, path, number)
