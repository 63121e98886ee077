"""The few symbols the TUI draws, in one place (all present in common terminal fonts)."""

from __future__ import annotations

__all__ = ["BAR_DONE", "BAR_TODO", "FAIL", "OK", "REKNOCK"]

OK = "\u2713"  # check mark
FAIL = "\u00d7"  # multiplication sign: in every font, unlike the ballot x
REKNOCK = "\u27f3"  # clockwise gapped circle arrow: keep-open countdown
BAR_DONE = "\u2501"  # heavy horizontal: the knocks of a sequence sent so far
BAR_TODO = "\u2500"  # light horizontal: those still to come
