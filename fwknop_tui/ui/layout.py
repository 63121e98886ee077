"""The terminal sizes the screens adapt to: one table, for the CSS classes and the code alike.

Textual puts ``-narrow``/``-normal``/``-wide`` and ``-short``/``-medium``/
``-tall`` on every screen as it resizes (``app.tcss`` and ``dialogs.tcss``
style by them); widgets that lay out in code (the profile table's columns)
ask ``width_class`` with the same thresholds.
"""

from __future__ import annotations

__all__ = ["HORIZONTAL", "VERTICAL", "width_class"]

HORIZONTAL = [(0, "-narrow"), (100, "-normal"), (160, "-wide")]
VERTICAL = [(0, "-short"), (30, "-medium"), (45, "-tall")]


def width_class(width: int) -> str:
    """``narrow``, ``normal`` or ``wide`` for a terminal ``width`` columns wide."""
    name = HORIZONTAL[0][1]
    for threshold, cls in HORIZONTAL:
        if width >= threshold:
            name = cls
    return name.lstrip("-")
