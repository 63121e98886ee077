"""Building widgets before they are mounted, without Textual styling each one on the way.

Textual applies the stylesheet to a widget (and its children) every time
one of its CSS classes changes, mounted or not: an ``Input`` made with
``compact=True`` and a value, a ``Button``, a ``Select`` each restyle
themselves while their constructors run, and are styled again when they
are mounted. The editor builds a tab of such fields at a time, and those
restyles were a large part of its opening time. While ``unstyled`` builds,
the app's ``update_styles`` does nothing (the constructors run no other
code: nothing mounted changes meanwhile); mounting styles each widget once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual.app import App

__all__ = ["unstyled"]

T = TypeVar("T")


def _skip(_node: object, animate: bool = True) -> None:
    """Stands in for ``App.update_styles`` while widgets are built."""


def unstyled(app: App[Any], build: Callable[[], T]) -> T:
    """``build()``, with no restyling of the widgets it makes (see the module docstring)."""
    app.update_styles = _skip  # type: ignore[assignment]
    try:
        return build()
    finally:
        del app.update_styles
