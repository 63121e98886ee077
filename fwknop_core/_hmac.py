"""fwknop's HMAC checks, written once: wire data against one key or many, each computed once.

The MAC covers the wire data with its encryption prefix restored
(``U2FsdGVkX1`` for Rijndael, ``hQ`` for GnuPG) and travels at the end of
the packet as unpadded base64 (spa-protocol.md §6).

A server checks every junk packet against the HMAC key of each stanza that
could take it, so checking is the hot path of a flood: ``HmacVerifier``
keys every HMAC once (with the prefix already fed in), checks a packet
against a whole set of keys in one call, says which key matched, and never
computes the MAC of one key twice for the same packet. What it returns on a
match (``MacMatch``) is what ``open_packet`` takes as "already verified
with this key", so opening does not compute the MAC again either.
"""

from __future__ import annotations

import binascii
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._keys import HmacKey
from ._primitives import Keyed
from ._types import EncryptionType

__all__ = ["MIN_ENCODED", "HmacVerifier", "MacMatch"]

MIN_ENCODED = 36  # libfko's floor for encoded and encrypted strings (what the MAC covers)


@dataclass(frozen=True, slots=True, repr=False)
class MacMatch:
    """``data`` carries a valid HMAC made with ``key`` (the ``index``-th of a verifier's keys).

    Made only by ``HmacVerifier``; ``open_packet(..., verified=match)`` trusts it.
    """

    index: int
    key: HmacKey
    data: bytes
    encryption: EncryptionType

    def __repr__(self) -> str:
        return f"MacMatch(key #{self.index}, {len(self.data)} bytes, {self.encryption.name})"


class HmacVerifier:
    """Checks wire data against a sequence of HMAC keys (None: no key at that place).

    ``first_match(data, start)`` is the match of the first key at or after
    ``start`` that ``data``'s MAC was made with, or None; keys before the
    match are known not to match. A key that appears twice is computed once
    per call. A caller that goes on after a match (say the first stanza that
    matched refused the packet for another reason) asks again from the next
    place, so no key's MAC is computed twice for one packet.
    """

    __slots__ = ("encryption", "first_match", "keys")

    def __init__(self, keys: Sequence[HmacKey | None], encryption: EncryptionType) -> None:
        self.keys = tuple(keys)
        self.encryption = encryption
        slots: list[tuple[int, Keyed, int, int]] = []  # (place, keyed, MAC length, first place)
        first: dict[HmacKey, int] = {}
        for place, key in enumerate(self.keys):
            if key is not None:
                slots.append(
                    (place, key.prefixed(encryption), key.mac_length, first.setdefault(key, place))
                )
        self.first_match: Callable[[bytes, int], MacMatch | None] = self._matcher(tuple(slots))

    def _matcher(
        self, slots: tuple[tuple[int, Keyed, int, int], ...]
    ) -> Callable[[bytes, int], MacMatch | None]:
        # a key seen earlier in the same call is not computed again; from the first place
        # (the common call: every packet of a flood) that is every repeat, dropped here
        unique = tuple((p, k, n) for p, k, n, first in slots if first == p)
        keys, encryption = self.keys, self.encryption
        b2a, equal, floor = binascii.b2a_base64, hmac.compare_digest, MIN_ENCODED

        if len(unique) == 1 and len(slots) == 1:  # one key (a single stanza): no loop
            ((only, keyed_state, n),) = unique
            key = keys[only]

            def only_match(data: bytes, start: int = 0) -> MacMatch | None:
                """The match of the key (if at or after ``start``) that made ``data``'s MAC."""
                if start > only or len(data) - n < floor:
                    return None
                h = keyed_state.copy()
                h.update(data[:-n])
                # b2a's padding and newline fall after the first n characters
                if equal(b2a(h.finalize())[:n], data[-n:]):
                    return MacMatch(only, key, data, encryption)  # type: ignore[arg-type]
                return None

            return only_match

        pairs = tuple((k, n) for _p, k, n in unique)  # walked from the first place: the hot loop

        def first_match(data: bytes, start: int = 0) -> MacMatch | None:
            """The match of the first key at or after ``start`` that made ``data``'s MAC."""
            if start:
                return from_place(data, start)
            size = len(data)
            for keyed_state, n in pairs:
                if size - n >= floor:
                    h = keyed_state.copy()
                    h.update(data[:-n])
                    if equal(b2a(h.finalize())[:n], data[-n:]):
                        return matched(unique[pairs.index((keyed_state, n))][0], data)
            return None

        def from_place(data: bytes, start: int) -> MacMatch | None:
            size = len(data)
            for place, keyed_state, n, first in slots:
                # a key seen earlier in this call (at or after start) is not computed again
                if place >= start and (first == place or first < start) and size - n >= floor:
                    h = keyed_state.copy()
                    h.update(data[:-n])
                    if equal(b2a(h.finalize())[:n], data[-n:]):
                        return matched(place, data)
            return None

        def matched(place: int, data: bytes) -> MacMatch:
            key = keys[place]
            assert key is not None  # noqa: S101 - only places with a key are walked
            return MacMatch(place, key, data, encryption)

        return first_match
