"""Configuration problems, each tied to the file and line that caused it.

Parsing collects every problem it finds instead of stopping at the first, so
``--exit-parse-config`` can report all of them at once; a daemon that finds
any refuses to start (or, on SIGHUP, keeps its old configuration).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConfigError", "Problem", "Problems"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration file (never quotes key material)."""

    path: Path | None
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class Problems:
    """Collects problems while parsing; ``raise_if_any`` ends the parse."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: Path | None, line: int | None, message: str) -> None:
        """Record one problem."""
        self.items.append(Problem(path, line, message))

    def raise_if_any(self) -> None:
        """Raise ``ConfigError`` with everything recorded, if anything was."""
        if self.items:
            raise ConfigError(self.items)
