"""What counts as an item of key-share text (``KEY_BASE64:<b64>``), apart from its keys.

Key files, key commands and stdin may hold either a bare key (base64, or a
passphrase) or share text; one grammar decides which, here, so the client's
"is this share text?" and the parser cannot drift. A passphrase may contain
the word "key" anywhere (``my-key-2024``, ``monkey: banana``, ``the key
door``), so an item is only:

* ``NAME:VALUE`` or ``NAME: VALUE`` (any case, as Fwknop2 compares names),
  with the name at the start of the text or after a space, a quote, ``;``
  or ``,`` (a QR code's text, ``fwknop keygen`` output);
* ``NAME  VALUE`` at the start of a line, with the name in capitals (an
  access.conf stanza, which writes them so).

This module imports nothing else of the package: ``fwknop send`` asks it
about every key text and loads the share parser only when the answer is yes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["is_share_text", "share_items"]

_NAMES = "HMAC_KEY_BASE64|HMAC_KEY|KEY_BASE64|KEY"
# groups 1/2: NAME:VALUE; groups 3/4: an access.conf line's NAME VALUE. Compiled on first
# use (re keeps it): the TUI imports this with the wallet and reads no key text at start
_SHARE_ITEM = (
    rf"(?<![^\s\"';,])(?i:({_NAMES}))[ \t]*:[ \t]*(\S+)"
    rf"|^[ \t]*({_NAMES})[ \t]+(\S+)"
)


def share_items(text: str) -> Iterator[tuple[str, str]]:
    """Each share item of ``text``: its name as written, and its value."""
    for match in re.finditer(_SHARE_ITEM, text, re.MULTILINE):
        yield match.group(1) or match.group(3), match.group(2) or match.group(4)


def is_share_text(text: str) -> bool:
    """Whether ``text`` holds at least one share item (else it is a bare key)."""
    return re.search(_SHARE_ITEM, text, re.MULTILINE) is not None
