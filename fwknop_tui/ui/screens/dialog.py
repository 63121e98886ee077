"""The base of every modal screen: it brings the dialogs' styles, loaded when the first opens."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

__all__ = ["Dialog"]

T = TypeVar("T")


class Dialog(ModalScreen[T]):
    """A modal screen with the dialog styles (``dialogs.tcss``)."""

    CSS_PATH = "../dialogs.tcss"
