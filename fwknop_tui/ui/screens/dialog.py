"""The base of every modal screen: the dialogs' styles, and a footer with the dialog's own keys.

The styles (``dialogs.tcss``) load when the first dialog opens. A dialog
draws its own footer, so the keys shown are the ones that work here (the
main screen's footer would show k Knock, n New ... under an editor).
``SECRET`` marks a screen that can show key material: the app offers no
screenshot while one is open.

From the key that makes a dialog until it is drawn, the garbage collector
is held off (``collector.py``); a dialog whose content comes after its first
frame (the editor's first tab) says when it is drawn itself
(``DRAWN_ON_MOUNT = False``, then ``drawn()``).
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual import events, on
from textual.app import ComposeResult
from textual.screen import ModalScreen

from ..layout import size_classes
from ..widgets.key_footer import KeyFooter

__all__ = ["Dialog"]

T = TypeVar("T")


class Dialog(ModalScreen[T]):
    """A modal screen with the dialog styles and its own footer."""

    CSS_PATH = "../dialogs.tcss"
    SECRET: ClassVar[bool] = False
    DRAWN_ON_MOUNT: ClassVar[bool] = True

    def __init__(self, *, classes: str = "dialog") -> None:
        size = self.app.size
        super().__init__(classes=f"{classes} {size_classes(size.width, size.height)}")
        self.is_drawn = False
        self._collector = getattr(self.app, "collector", None)
        if self._collector is not None:
            self._collector.hold(self)

    def drawn(self) -> None:
        """The dialog is on screen, its content built: the collector may run again."""
        self.is_drawn = True
        if self._collector is not None:
            self._collector.release(self)

    @on(events.Mount)
    def _drawn_after_mount(self) -> None:
        if self.DRAWN_ON_MOUNT:
            self.call_after_refresh(self.drawn)

    @on(events.Unmount)
    def _release_on_unmount(self) -> None:
        # a dialog closed before it was drawn holds the collector off no longer
        if self._collector is not None:
            self._collector.release(self)

    def compose(self) -> ComposeResult:
        yield from self.compose_dialog()
        yield KeyFooter()

    def compose_dialog(self) -> ComposeResult:
        """The dialog's content (the footer is added after it)."""
        raise NotImplementedError
