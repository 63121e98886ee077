"""The terminal sizes the screens adapt to: one table, for the CSS classes and the code alike.

Textual puts ``-narrow``/``-normal``/``-wide`` and ``-short``/``-medium``/
``-tall`` on every screen as it resizes (``app.tcss`` and ``dialogs.tcss``
style by them); widgets that lay out in code (the profile table's columns)
ask ``width_class`` with the same thresholds.
"""

from __future__ import annotations

__all__ = ["HORIZONTAL", "VERTICAL", "size_classes", "width_class"]

HORIZONTAL = [(0, "-narrow"), (100, "-normal"), (160, "-wide")]
VERTICAL = [(0, "-short"), (30, "-medium"), (45, "-tall")]


def _pick(breakpoints: list[tuple[int, str]], value: int) -> str:
    name = breakpoints[0][1]
    for threshold, cls in breakpoints:
        if value >= threshold:
            name = cls
    return name


def width_class(width: int) -> str:
    """``narrow``, ``normal`` or ``wide`` for a terminal ``width`` columns wide."""
    return _pick(HORIZONTAL, width).lstrip("-")


def size_classes(width: int, height: int) -> str:
    """The classes Textual gives a screen of this size (``-narrow -short`` ...).

    A screen built with them already has nothing to restyle when Textual
    adds them as it shows the screen: styling every widget twice was a good
    part of the time a dialog took to open.
    """
    return f"{_pick(HORIZONTAL, width)} {_pick(VERTICAL, height)}"
