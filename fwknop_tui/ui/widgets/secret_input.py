"""A masked input for keys and passphrases that takes a whole pasted block (keygen output)."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

__all__ = ["SecretInput"]


class SecretInput(Input):
    """Always masked; a multi-line paste (``KEY_BASE64: ...`` lines) becomes one line."""

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:  # noqa: A002
        super().__init__(placeholder=placeholder, password=True, id=id, compact=True)

    def _on_paste(self, event: events.Paste) -> None:
        text = " ".join(line.strip() for line in event.text.splitlines() if line.strip())
        if text:
            self.insert_text_at_cursor(text)
        event.stop()
