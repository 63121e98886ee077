"""The help screen: what fwknop-tui does, and every screen's keys with their binding ids.

The keys are the screens' own bindings as ``tui.toml`` maps them
(``bindings.sections``), so the page cannot drift from what the keys do.
Drawn with Rich tables rather than Markdown: it opens at once.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ..bindings import KeyRow, Section
from .dialog import Dialog

__all__ = ["HelpScreen", "KeyRow"]

ABOUT = """\
[b $accent]fwknop-tui[/]

Single Packet Authorization, wire-compatible with fwknop 2.6. Pick a profile \
and knock: the packet is built, sent, and (with a verify target) the port \
is probed until it answers. Keys live in your OS keyring.

[b]Command palette[/b]: [b]ctrl+p[/b] finds every action (knock, share, new, import, \
keygen, theme) and every profile.

[b]Key bindings[/b] can be changed in [b]tui.toml[/b] beside profiles.toml, by binding id:

  [dim]\\[keymap][/dim]
  [dim]knock = "k,enter"[/dim]
  [dim]"editor.save" = "ctrl+w"[/dim]
"""


def key_table(title: str, rows: list[KeyRow]) -> Table:
    """One screen's keys as a table."""
    table = Table(
        title=Text(title, "bold"),
        title_justify="left",
        expand=True,
        box=None,
        show_edge=False,
        header_style="dim",
        padding=(0, 1, 0, 0),
    )
    table.add_column("Keys", no_wrap=True, style="bold")
    table.add_column("Action", no_wrap=True)
    table.add_column("Binding id", no_wrap=True, style="cyan")
    table.add_column("What it does", ratio=1)
    for keys, action, ident, tooltip in rows:
        table.add_row(keys, action, ident, tooltip)
    return table


class HelpScreen(Dialog[None]):
    """A scrollable page of help."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,f1,q", "close", "Close", id="help.close", tooltip="Back"),
    ]

    def __init__(self, sections: list[Section]) -> None:
        super().__init__(classes="dialog large")
        self.sections = sections

    def compose_dialog(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide tall"), VerticalScroll(id="help-scroll"):
            yield Static(ABOUT, id="about")
            for title, rows in self.sections:
                yield Static(key_table(title, rows), classes="keys")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def rows(self) -> list[KeyRow]:
        """Every row, all screens together (for tests)."""
        return [row for _title, rows in self.sections for row in rows]

    def action_close(self) -> None:
        """Back to where we were."""
        self.dismiss(None)
