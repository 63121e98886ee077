"""A fake ``CommandRunner`` for the firewall backends' unit tests."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Recorder"]


class Recorder:
    """Records each argv and succeeds, or fails where the argv holds one of ``fail``'s words."""

    def __init__(self, fail: Sequence[str] = ()) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail  # argv words that make a command fail (say "-S", "-C")

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return (1, "", "no") if any(w in argv for w in self.fail) else (0, "", "")
