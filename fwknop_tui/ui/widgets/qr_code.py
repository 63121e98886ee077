"""A QR code drawn with half blocks in fixed black and white, so it scans whatever the theme."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from ...qr import qr_matrix

__all__ = ["QrCode", "qr_text"]

_DARK = "#000000"
_LIGHT = "#ffffff"


def qr_text(matrix: list[list[bool]]) -> Text:
    """A QR matrix as text: two module rows per line (upper half block, fg top, bg bottom)."""
    if len(matrix) % 2:
        matrix = [*matrix, [False] * len(matrix[0])]
    styles = {
        (t, b): Style(color=_DARK if t else _LIGHT, bgcolor=_DARK if b else _LIGHT)
        for t in (False, True)
        for b in (False, True)
    }
    out = Text(no_wrap=True, overflow="crop")
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        run_key: tuple[bool, bool] | None = None
        run = 0
        for cell in zip(top, bottom, strict=True):
            if cell != run_key and run:
                out.append("▀" * run, styles[run_key])  # type: ignore[index]
                run = 0
            run_key = cell
            run += 1
        if run and run_key is not None:
            out.append("▀" * run, styles[run_key])
        out.append("\n")
    out.rstrip()
    return out


class QrCode(Static):
    """Shows the QR code of a text (the text itself is never rendered)."""

    def __init__(self, data: str, *, id: str | None = None) -> None:  # noqa: A002
        matrix = qr_matrix(data)
        super().__init__(qr_text(matrix), id=id)
        self._modules = len(matrix)

    @property
    def modules(self) -> int:
        """Modules per side, quiet zone included."""
        return self._modules
