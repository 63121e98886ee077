"""Every key binding of the TUI, screen by screen: what F1 lists and what tui.toml may remap.

The bindings are read from the screens' own ``BINDINGS`` (nothing is listed
twice), with the keys as ``tui.toml``'s ``[keymap]`` maps them. Importing
this module imports every screen, so the app does it after its first frame
(when it checks the key map) or when help opens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual.binding import Binding, BindingType

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["KeyRow", "Section", "known_ids", "screen_bindings", "sections", "unknown_ids"]

KeyRow = tuple[str, str, str, str]  # keys, description, binding id, tooltip
Section = tuple[str, list[KeyRow]]  # a screen's title and its rows


def screen_bindings() -> list[tuple[str, list[BindingType]]]:
    """Each screen's title and its ``BINDINGS`` (the app's first: they work everywhere)."""
    from .app import FwknopApp  # noqa: PLC0415
    from .screens import modals  # noqa: PLC0415
    from .screens.first_run import FirstRunScreen  # noqa: PLC0415
    from .screens.main import MainScreen  # noqa: PLC0415

    return [
        ("Everywhere", list(FwknopApp.BINDINGS)),
        ("Profiles (the main screen)", list(MainScreen.BINDINGS)),
        ("Editor", list(modals.EditorScreen.BINDINGS)),
        ("Share (QR code)", list(modals.ShareScreen.BINDINGS)),
        ("Server stanza", list(modals.StanzaScreen.BINDINGS)),
        ("Import", list(modals.ImportScreen.BINDINGS)),
        ("Questions (delete, keygen, discard)", list(modals.ConfirmScreen.BINDINGS)),
        ("Allow IP 'ask'", list(modals.AskAllowIpScreen.BINDINGS)),
        ("First run", list(FirstRunScreen.BINDINGS)),
        ("Help", list(modals.HelpScreen.BINDINGS)),
    ]


def _bindings(listed: Iterable[BindingType]) -> list[Binding]:
    return [b for b in listed if isinstance(b, Binding) and b.id]


def known_ids() -> set[str]:
    """Every binding id a key map may name."""
    return {b.id for _title, listed in screen_bindings() for b in _bindings(listed) if b.id}


def sections(keymap: dict[str, str], key_display: Callable[[Binding], str]) -> list[Section]:
    """Each screen's bindings, keys as mapped by ``keymap`` and shown by ``key_display``."""
    out: list[Section] = []
    for title, listed in screen_bindings():
        rows: list[KeyRow] = []
        for binding in _bindings(listed):
            assert binding.id is not None  # noqa: S101 - filtered above
            keys = keymap.get(binding.id, binding.key)
            shown = ", ".join(
                key_display(dataclasses.replace(binding, key=key.strip()))
                for key in keys.split(",")
                if key.strip()
            )
            label = binding.description or binding.action
            rows.append((shown, label, binding.id, binding.tooltip))
        out.append((title, rows))
    return out


def unknown_ids(settings: Settings) -> list[str]:
    """A problem (file, line, id) for each key map entry that names no binding."""
    known = known_ids()
    problems = []
    lines = []
    if settings.path is not None:
        try:
            lines = settings.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
    for ident in settings.keymap:
        if ident in known:
            continue
        line = next((n for n, text in enumerate(lines, 1) if text.strip().startswith(ident)), 0)
        where = f"{settings.path}:{line}" if line else str(settings.path or "tui.toml")
        problems.append(
            f"{where}: keymap.{ident}: no binding has this id, so it changes nothing "
            "(F1 lists every id)"
        )
    return problems
