"""The command palette's verbs: knock, share, edit, keygen, stanza, keep open (per profile), new,
import, demo, help. Textual's own provider adds theme switching, keys and quit."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import FwknopApp

__all__ = ["FwknopCommands"]

Command = tuple[str, Callable[[], object], str]

PER_PROFILE = (
    ("Knock", "knock", "send the SPA packet (knock)"),
    ("Share", "share", "show the keys as a QR code"),
    ("Edit", "edit", "open the profile in the editor"),
    ("Keygen", "keygen", "new keys into the keyring, and the server stanza"),
    ("Server stanza", "stanza", "the access.conf stanza for the server"),
    ("Keep open", "keep_open", "re-knock before the port closes, until stopped"),
    ("Delete", "delete", "remove the profile and its keyring entries"),
)


class FwknopCommands(Provider):
    """fwknop-tui's commands, general ones first, then one of each verb per profile."""

    @property
    def fwknop(self) -> FwknopApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def _general(self) -> list[Command]:
        app = self.fwknop
        main = app.main_screen
        return [
            ("New profile", main.action_new, "create a profile in the editor"),
            ("Import ~/.fwknoprc", partial(main.action_import, "rc"), "rc stanzas become profiles"),
            (
                "Import share text or QR image",
                partial(main.action_import, "share"),
                "keys from Fwknop2/fwknop-gui share text, keygen output or a QR picture",
            ),
            ("Run the demo", app.action_demo, "our fwknopd on loopback, and a knock that works"),
            ("Help", app.action_help, "what fwknop-tui does, and every key"),
        ]

    def _per_profile(self) -> list[Command]:
        main = self.fwknop.main_screen
        return [
            (f"{verb} {name}", partial(main.act, action, name), what)
            for name in main.profiles
            for verb, action, what in PER_PROFILE
        ]

    async def discover(self) -> Hits:
        """The general commands, and knocking each profile."""
        commands = self._general() + [c for c in self._per_profile() if c[0].startswith("Knock ")]
        for label, callback, help_text in commands:
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Every command whose name matches what was typed."""
        matcher = self.matcher(query)
        for label, callback, help_text in self._general() + self._per_profile():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)
                continue
            # "send home" finds "Knock home", whose help says what it does
            name = label.split(" ", 1)[-1]
            also = matcher.match(f"{help_text} {name}") * 0.8
            if also > 0:
                yield Hit(also, label, callback, text=label, help=help_text)
