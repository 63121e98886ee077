"""The profile list: name, destination, ports, transport, last knock and keep-open countdown.

The columns follow the terminal's width (``layout.width_class``): at 80
columns the list shows name, destination and the last knock's mark and age
(ports, transport and timings are in the knock pane beside it); wide
terminals get every column with hosts and ports unclipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from ...history import KnockRecord
from ...wallet.profiles import Profile
from .. import glyphs

__all__ = ["ProfileRow", "ProfileTable", "ago", "destination", "matches"]

COLUMNS = (
    ("name", "Profile"),
    ("dest", "Destination"),
    ("ports", "Ports"),
    ("via", "Via"),
    ("last", "Last knock"),
)
# per width class: the columns shown, and how wide a destination and a port list may get
LAYOUTS = {
    "narrow": (("name", "dest", "last"), 16, 0),
    "normal": (tuple(key for key, _ in COLUMNS), 22, 14),
    "wide": (tuple(key for key, _ in COLUMNS), 60, 48),
}


def ago(seconds: float) -> str:
    """A short age: ``12s``, ``3m``, ``5h``, ``2d``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def destination(profile: Profile) -> str:
    """host:port as the list shows it (``random`` for a random port; a knock sequence's
    ports are its steps, so just the host)."""
    host = f"[{profile.host}]" if ":" in profile.host else profile.host
    if profile.knocks_sequence:
        return host
    return f"{host}:{'random' if profile.random_port else profile.port}"


def ports(profile: Profile) -> str:
    """What the profile asks for."""
    if profile.server_command:
        return f"cmd: {profile.server_command}"
    if profile.knocks_sequence and profile.knock_sequence:
        return ",".join(profile.knock_sequence)
    return ",".join(profile.access)


def transport(profile: Profile) -> str:
    """How it knocks: the SPA transport, or the kind of 1.x knock sequence."""
    if profile.knocks_sequence:
        return "shared seq" if profile.knock_sequence else "1.x knock"
    return profile.transport.value


def matches(profile: Profile, query: str) -> bool:
    """Whether a filter query (words, any order, case-insensitive) matches a profile."""
    haystack = " ".join(
        (profile.name, profile.host, ports(profile), transport(profile), profile.description)
    ).lower()
    return all(word in haystack for word in query.lower().split())


@dataclass(frozen=True)
class ProfileRow:
    """What one row shows (the countdown leads the last-knock cell while keep-open runs)."""

    profile: Profile
    last: KnockRecord | None = None
    countdown: float | None = None  # seconds to the next keep-open knock
    running: bool = False


class ProfileTable(DataTable[Text]):
    """A table of profiles; the row key is the profile name."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.layout_name = ""
        self._rows: list[ProfileRow] = []
        self.set_layout("normal", 0.0)

    def set_layout(self, name: str, now: float) -> None:
        """Show the columns of a width class (``LAYOUTS``), keeping the rows and the cursor."""
        if name == self.layout_name:
            return
        current = self.selected_name
        self.layout_name = name
        keys = LAYOUTS[name][0]
        self.clear(columns=True)
        for key, label in COLUMNS:
            if key in keys:
                self.add_column(label, key=key)
        if self._rows:
            self.show(self._rows, now, select=current)

    def _cells(self, row: ProfileRow, now: float) -> list[Text]:
        p = row.profile
        keys, max_dest, max_ports = LAYOUTS[self.layout_name]
        cells = {
            "name": Text(p.name, style="bold"),
            "dest": Text(clip(destination(p), max_dest)),
            "ports": Text(clip(ports(p), max_ports)),
            "via": Text(transport(p)),
            "last": self._last(row, now),
        }
        return [cells[key] for key in keys]

    def _last(self, row: ProfileRow, now: float) -> Text:
        keep = Text("")
        if row.countdown is not None:
            keep = Text(f"{glyphs.REKNOCK}{max(0, int(row.countdown))}s ", style="bold cyan")
        if row.running:
            return Text.assemble(keep, ("knocking…", "bold cyan"))
        rec = row.last
        if rec is None:
            return Text.assemble(keep, ("never", "dim"))
        mark, style = (glyphs.OK, "green") if rec.ok else (glyphs.FAIL, "red")
        age = ago(now - rec.when)
        if self.layout_name == "narrow":  # the knock pane beside the list has the rest
            return Text.assemble(keep, (mark, f"bold {style}"), f" {age}")
        took = f"{rec.seconds * 1000:.0f}ms" if rec.ok else (rec.failed_stage or "failed")
        return Text.assemble(keep, (mark, f"bold {style}"), f" {age} · {took}")

    def show(self, rows: Iterable[ProfileRow], now: float, select: str | None = None) -> None:
        """Replace the rows, keeping the cursor on ``select`` (or the current row)."""
        current = select or self.selected_name
        self._rows = list(rows)
        self.clear()
        for row in self._rows:
            self.add_row(*self._cells(row, now), key=row.profile.name)
        if current is not None:
            self.select_name(current)

    def update_row(self, row: ProfileRow, now: float) -> None:
        """Refresh the knock column of one row (only when what it says has changed)."""
        name = row.profile.name
        if name not in self.names:
            return
        self._rows = [row if r.profile.name == name else r for r in self._rows]
        cell = self._last(row, now)
        if self.get_cell(name, "last") != cell:
            self.update_cell(name, "last", cell, update_width=True)

    @property
    def names(self) -> list[str]:
        """The names shown, in order."""
        return [str(k.value) for k in self.rows]

    @property
    def selected_name(self) -> str | None:
        """The profile under the cursor."""
        if not self.row_count:
            return None
        try:
            key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:  # an empty or shrinking table has no cursor cell
            return None
        return None if key.value is None else str(key.value)

    def select_name(self, name: str) -> None:
        """Move the cursor to a profile, if shown."""
        if name in self.names:
            self.move_cursor(row=self.get_row_index(name))
