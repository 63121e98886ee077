"""Every modal screen, for the main screen to import in one go when it first opens one."""

from __future__ import annotations

from .ask import AskAllowIpScreen
from .confirm import ConfirmScreen
from .editor import EditorScreen
from .help import HelpScreen
from .importer import ImportScreen
from .share import ShareScreen
from .stanza import StanzaScreen

__all__ = [
    "AskAllowIpScreen",
    "ConfirmScreen",
    "EditorScreen",
    "HelpScreen",
    "ImportScreen",
    "ShareScreen",
    "StanzaScreen",
]
