"""The log pane: timestamped lines that wrap under their text and rewrap when the pane resizes.

Textual's ``RichLog`` renders each line once, at the width it had then (and
at least its ``min_width`` of 78 cells), so at 80 columns the text ran under
the scrollbar and a resize left the old wrap in place. This log keeps the
entries, renders them itself into the ``RichLog``'s lines at the pane's own
width (the vertical scrollbar is always there, so the width does not change
when the log grows past the pane), and renders them all again when the
width changes. A wrapped line continues under its text, not under the time.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import RichLog

__all__ = ["KnockLog", "LogEntry", "local_times"]

_UNTIL_EPOCH = re.compile(r"\b(until|expires?|at) (\d{10})(?:\.\d+)?\b")


def local_times(text: str) -> str:
    """``until 1796040030`` (a server's epoch seconds) as ``until 12:00:30``, local time."""

    def local(m: re.Match[str]) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(int(m.group(2))))
        return f"{m.group(1)} {stamp}"

    return _UNTIL_EPOCH.sub(local, text)


@dataclass(frozen=True)
class LogEntry:
    """One line of the log: when, what, and whether it is an error."""

    when: float
    text: str
    error: bool = False

    def render(self, console: Console, width: int) -> list[Strip]:
        """The entry's lines: the time, then the text, wrapped to continue under itself."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.when))
        indent = len(stamp) + 1
        body = Text(self.text, "red" if self.error else "")
        lines = body.wrap(console, max(1, width - indent), overflow="fold")
        strips = []
        for n, line in enumerate(lines):
            head = Text(stamp, "dim") if n == 0 else Text(" " * len(stamp))
            row = Text.assemble(head, " ", line)
            strips.append(Strip(row.render(console), row.cell_len).adjust_cell_length(width))
        return strips


class KnockLog(RichLog):
    """A log of ``LogEntry`` lines, rendered at the pane's width, again after each resize."""

    def __init__(self, *, max_lines: int = 2000, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, wrap=True, markup=False, min_width=1, max_lines=max_lines)
        self.entries: deque[LogEntry] = deque(maxlen=max_lines)
        self._rendered_width = 0

    def add(self, entry: LogEntry) -> None:
        """Append an entry (shown at once if the pane has a size, else when it gets one)."""
        self.add_many([entry])

    def add_many(self, entries: list[LogEntry]) -> None:
        """Append entries, rendered and laid out once for all of them."""
        if not entries:
            return
        self.entries.extend(entries)
        width = self._rendered_width
        if width > 0:
            console = self.app.console
            self._append([s for e in entries for s in e.render(console, width)], width)
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def _append(self, strips: list[Strip], width: int) -> None:
        self.lines.extend(strips)
        if self.max_lines is not None and len(self.lines) > self.max_lines:
            self.lines = self.lines[-self.max_lines :]
        self._line_cache.clear()
        self.virtual_size = Size(width, len(self.lines))
        self.refresh()

    def _rerender(self, width: int) -> None:
        self._rendered_width = width
        at_end = self.is_vertical_scroll_end or not self.lines
        self.lines = []
        console = self.app.console
        self._append([s for e in self.entries for s in e.render(console, width)], width)
        if at_end:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def on_resize(self, _event: events.Resize) -> None:
        """Render every entry again at the new width."""
        width = self.scrollable_content_region.width
        if width > 0 and width != self._rendered_width:
            self._rerender(width)

    @property
    def plain_lines(self) -> list[str]:
        """The lines as shown, without styles (for tests and the screen reader in all of us)."""
        return [strip.text.rstrip() for strip in self.lines]
