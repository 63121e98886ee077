"""The base of every modal screen: the dialogs' styles, and a footer with the dialog's own keys.

The styles (``dialogs.tcss``) load when the first dialog opens. A dialog
draws its own footer, so the keys shown are the ones that work here (the
main screen's footer would show k Knock, n New ... under an editor).
``SECRET`` marks a screen that can show key material: the app offers no
screenshot while one is open.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Footer

from ..layout import size_classes

__all__ = ["Dialog"]

T = TypeVar("T")


class Dialog(ModalScreen[T]):
    """A modal screen with the dialog styles and its own footer."""

    CSS_PATH = "../dialogs.tcss"
    SECRET: ClassVar[bool] = False

    def __init__(self, *, classes: str = "dialog") -> None:
        size = self.app.size
        super().__init__(classes=f"{classes} {size_classes(size.width, size.height)}")

    def compose(self) -> ComposeResult:
        yield from self.compose_dialog()
        yield Footer(compact=True)

    def compose_dialog(self) -> ComposeResult:
        """The dialog's content (the footer is added after it)."""
        raise NotImplementedError
