"""Textual's compact footer, without restyling each of its keys once more as it mounts.

A compact ``Footer`` binds its ``compact`` to each ``FooterKey``, whose
watcher adds the ``-compact`` class when the key is mounted, after it was
styled: every key of every screen's footer was styled twice. This footer
gives each key the class before it is mounted, so the watcher finds it
there and changes nothing.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

__all__ = ["KeyFooter"]


class KeyFooter(Footer):
    """A compact ``Footer`` whose keys are compact from the start."""

    def __init__(self) -> None:
        super().__init__(compact=True)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                widget.add_class("-compact", update=False)
            yield widget
