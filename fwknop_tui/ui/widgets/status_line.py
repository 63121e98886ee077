"""One line above the footer: how the last knock ended, and every keep-open countdown.

It is always visible, whatever the terminal's size: the knock pane may
scroll and the table may clip, but the outcome and the next re-knock stay
on screen.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

__all__ = ["StatusLine"]


class StatusLine(Static):
    """Left: the last knock's outcome; right: the keep-open countdowns."""

    def show(self, outcome: Text, countdowns: Text) -> None:
        """Draw both parts; the outcome is cut with an ellipsis when the line is short."""
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="right")
        grid.add_row(outcome, countdowns)
        self.update(grid)

    @property
    def text(self) -> str:
        """What the line says, as plain text (for tests)."""
        grid = self.content
        if not isinstance(grid, Table):
            return ""
        cells = [c for column in grid.columns for c in column.cells]
        return "  ".join(c.plain for c in cells if isinstance(c, Text)).strip()
