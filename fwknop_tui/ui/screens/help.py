"""The help screen: what fwknop-tui does and every key, as currently mapped."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown

from .dialog import Dialog

__all__ = ["HelpScreen", "KeyRow"]

KeyRow = tuple[str, str, str, str]  # keys, description, binding id, tooltip

ABOUT = """\
# fwknop-tui

Single Packet Authorization, wire-compatible with fwknop 2.6. Pick a profile
and knock: the packet is built, sent, and (with a verify target) the port
is probed until it answers. Keys live in your OS keyring.

**Command palette**: `ctrl+p` finds every action (knock, share, new, import,
keygen, theme) and every profile.

**Key bindings** can be changed in `tui.toml` beside `profiles.toml`:

```toml
[keymap]
knock = "k,enter"
```
"""


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


class HelpScreen(Dialog[None]):
    """A scrollable page of help."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,f1,q", "close", "Close", id="help.close", tooltip="Back"),
    ]

    def __init__(self, keys: Iterable[KeyRow]) -> None:
        super().__init__(classes="dialog")
        rows = "\n".join(
            f"| `{_escape(k)}` | {_escape(d)} | `{i}` | {_escape(t)} |" for k, d, i, t in keys
        )
        self.text = (
            f"{ABOUT}\n| Keys | Action | Binding id | What it does |\n|---|---|---|---|\n{rows}\n"
        )

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide tall"), VerticalScroll():
            yield Markdown(self.text)

    def action_close(self) -> None:
        """Back to where we were."""
        self.dismiss(None)
