"""The flood screen: what turns a packet away before anything is decrypted, and what counts a flood.

A flood is junk: packets of the wrong size or characters, from sources no
stanza takes, or whose HMAC matches no candidate stanza's key. ``Screen``
decides those in one call per packet (``check``), with the same refusal
object every time for the same verdict, so that:

* capture can call it on the bytes it just read (``check`` is what a source
  is handed) and drop what is past its log rate without making a ``Packet``
  of it: the daemon marks a refusal ``mute`` once it is past its rate, and
  from then on ``check`` counts such packets and answers ``MUTED``;
* the pipeline does not screen a packet capture screened already: the
  verdict travels in ``Packet.screened``. When the HMAC of a candidate
  stanza matched, the verdict is the core's ``MacMatch``, which the pipeline
  continues from and hands to ``open_packet``: no MAC is computed twice.

An x25519 packet (docs/x25519-spa.md: ``~`` first, a character no fwknop
packet has) is told apart by its first byte, before fwknop's prefix and
base64 checks, and goes its own way: the key id in its clear header is
looked up in the configuration's ``X25519Keyring`` (one slice, one dict
lookup: no decoding, no cryptography). An unknown id, junk in this format
and another version each get one cached refusal, so a flood of them is
muted like fwknop junk. A known id is checked against the stanzas that
name it (their SOURCE), still before any cryptography; then the one AEAD
verification, unless one of those stanzas has a DESTINATION or an expiry,
which the pipeline checks first (it knows the destination and the time).
The verdict, ``X25519Way``, carries the stanzas to try and the opened
packet to the pipeline.

The screen and its counts belong to one configuration: a reload makes a
new one (``release`` hands the old counts over first).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

from fwknop_core import (
    MAX_PACKET,
    MIN_GPG_PACKET,
    MIN_PACKET,
    EncryptionType,
    HmacVerifier,
    InvalidPacket,
    MacMatch,
    OpenedPacket,
    RejectReason,
    X25519Client,
    X25519Keyring,
    X25519Opened,
)

from .access import AccessStanza
from .vocab import MUTED, Attempt, IPAddress, Muted, Reason, Refused

__all__ = [
    "LONG_WAY",
    "Candidates",
    "Screen",
    "Verdict",
    "X25519Route",
    "X25519Way",
    "refusal",
]

_WIRE_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_RIJNDAEL_PREFIX = EncryptionType.RIJNDAEL.wire_prefix
_GPG_PREFIX = EncryptionType.GPG.wire_prefix
_CANDIDATE_CACHE = 4096  # source addresses remembered with their matching stanzas
_MUTED_MAX = 64  # refusals muted at a time

# refusals without detail are made once: a flood gets the same objects back
_TOO_SHORT = Refused(Reason.TOO_SHORT, silent=True)
_TOO_LONG = Refused(Reason.TOO_LONG, silent=True)
_NOT_SPA = Refused(Reason.NOT_SPA)
_PREFIX_STUFFING = Refused(Reason.PREFIX_STUFFING)
_NO_STANZA = Refused(Reason.NO_STANZA)
_UNKNOWN_KEY_ID = Refused(Reason.UNKNOWN_KEY_ID)
_NO_CLIENTS = Refused(Reason.UNKNOWN_KEY_ID, "this server has no x25519 clients")
_X25519_VERSION = Refused(Reason.X25519_VERSION)
_X25519_MARK = ord("~")  # the x25519 format's first byte (fwknop_core.looks_like_x25519)
_X25519_VERSION_ONE = ord("1")
# the core's reasons for an x25519 packet with a known key id, as the server counts them
_X25519_REASONS = {
    RejectReason.AUTH_FAILED: Reason.AEAD,
    RejectReason.NOT_BASE64: Reason.NOT_SPA,
    RejectReason.BAD_CIPHERTEXT_LENGTH: Reason.NOT_SPA,
    RejectReason.UNSUPPORTED_VERSION: Reason.X25519_VERSION,
    RejectReason.STALE: Reason.STALE,
}
# what anyone can send with a known key id (before the AEAD, or failing it): a cached refusal
# per reason, so a flood of such packets is muted; what fails after the AEAD was sent by the key
_CACHED = frozenset((RejectReason.AUTH_FAILED, RejectReason.NOT_BASE64,
                     RejectReason.BAD_CIPHERTEXT_LENGTH))  # fmt: skip
# ranking for "the stanza that got furthest": later in the pipeline is more telling
_RANK = {reason: rank for rank, reason in enumerate(Reason)}


class LongWay(enum.Enum):
    """The verdict on a packet the screen cannot decide: the pipeline takes it stanza by stanza."""

    LONG_WAY = "long way"


LONG_WAY: Final = LongWay.LONG_WAY


def refusal(
    attempts: Sequence[Attempt], *, opened: OpenedPacket | X25519Opened[Any] | None = None
) -> Refused:
    """What a packet every candidate stanza refused gets: the weightiest reason, and all of them."""
    best = max(attempts, key=lambda a: _RANK[a[1]])
    return Refused(best[1], best[2], stanza=best[0], attempts=tuple(attempts), opened=opened)


FirstMatch = Callable[[bytes, int], MacMatch | None]


class X25519Route:
    """An x25519 client's way through one set of SOURCE candidates: the stanzas that name its key.

    Made once per (candidates, client), on the first packet that needs it.
    ``refused`` is the verdict when none of those stanzas takes the
    source; ``direct`` whether the screen may open the packet (no stanza
    has a DESTINATION or an expiry to check first). Refusals of what anyone
    could send with this key id are made once each (``failed``).
    """

    __slots__ = ("_failures", "_own", "client", "direct", "owners", "refused")

    def __init__(
        self,
        client: X25519Client[AccessStanza],
        candidates: tuple[AccessStanza, ...],
        own: set[int],
    ) -> None:
        self.client = client
        numbers = {stanza.number for stanza in candidates}
        self.owners = tuple(s for s in client.owners if s.number in numbers)
        self.refused: Refused | None = None
        if not self.owners:
            self.refused = Refused(Reason.NO_STANZA, f"x25519 key id {client.shared.key_id_text}")
            own.add(id(self.refused))
        self.direct = all(s.destination is None and s.expires_at is None for s in self.owners)
        self._failures: dict[RejectReason, Refused] = {}
        self._own = own

    def failed(self, failure: InvalidPacket) -> Refused:
        """The refusal of a packet with this key id that the core refused."""
        cached = self._failures.get(failure.reason)
        if cached is not None:
            return cached
        reason = _X25519_REASONS.get(failure.reason, Reason.MALFORMED)
        words = failure.detail if reason is not Reason.MALFORMED else str(failure)
        detail = f"x25519 key id {self.client.shared.key_id_text}" + (f": {words}" if words else "")
        refused = Refused(reason, detail, stanza=self.owners[0].number if self.owners else None)
        if failure.reason in _CACHED:
            self._failures[failure.reason] = refused
            self._own.add(id(refused))
        return refused


class X25519Way(NamedTuple):
    """The screen's verdict on an x25519 packet of a known client that a stanza may take.

    ``owners``: the stanzas naming the client's key whose SOURCE matched, in
    file order; ``opened``: the packet, verified and decrypted (the one
    AEAD), or None when the pipeline must check DESTINATION or expiry first
    and open it then (``route.client``).
    """

    route: X25519Route
    opened: X25519Opened[AccessStanza] | None


Verdict = Refused | MacMatch | LongWay | Muted | X25519Way


class Candidates(NamedTuple):
    """The stanzas whose SOURCE matched a packet's, and how packets of each size are checked."""

    stanzas: tuple[AccessStanza, ...]
    # by size (Rijndael-sized, GnuPG-sized): the HMAC key of each candidate stanza that
    # can decrypt such data, in stanza order (None where it has none or cannot)
    verifiers: tuple[HmacVerifier, HmacVerifier]
    # by size: the verifier's first_match, and what a packet gets when no candidate's HMAC
    # matches, where that decides it (the other candidates refuse such data before any
    # HMAC); None where some candidate has to go the long way (no HMAC key, DESTINATION,
    # expiry)
    screens: tuple[tuple[FirstMatch, Refused] | None, tuple[FirstMatch, Refused] | None]
    # x25519 clients' routes through these candidates, by key id (made on first use)
    routes: dict[bytes, X25519Route]


def _candidates(stanzas: tuple[AccessStanza, ...]) -> Candidates:
    def for_size(gpg_sized: bool) -> tuple[HmacVerifier, Refused | None]:
        keys = [s.hmac_key if (s.gpg if gpg_sized else s.key) is not None else None
                for s in stanzas]  # fmt: skip
        verifier = HmacVerifier(keys, EncryptionType.GPG if gpg_sized else EncryptionType.RIJNDAEL)
        attempts: list[Attempt] = []
        for stanza in stanzas:
            if stanza.destination is not None or stanza.expires_at is not None:
                return verifier, None  # this stanza refuses for another reason, or first
            if (stanza.gpg if gpg_sized else stanza.key) is None:
                # it cannot decrypt such data and says so before any HMAC (a GnuPG
                # stanza, for Rijndael-sized junk): nothing to compute for it
                attempts.append((stanza.number, Reason.NO_DECRYPTION,
                                 "GnuPG" if gpg_sized else "Rijndael"))  # fmt: skip
            elif stanza.hmac_key is None:
                return verifier, None
            else:
                attempts.append((stanza.number, Reason.HMAC_MISMATCH, ""))
        # as the stanza-by-stanza path has it
        return verifier, (refusal(attempts) if stanzas else None)

    (rijndael, rijndael_refused), (gpg, gpg_refused) = for_size(False), for_size(True)
    return Candidates(
        stanzas,
        (rijndael, gpg),
        (
            None if rijndael_refused is None else (rijndael.first_match, rijndael_refused),
            None if gpg_refused is None else (gpg.first_match, gpg_refused),
        ),
        {},
    )


Check = Callable[..., Verdict]


class Screen:
    """The pre-decrypt checks for one set of access stanzas, and the counts of what it muted."""

    def __init__(
        self,
        stanzas: Sequence[AccessStanza],
        *,
        http: bool = False,
        keyring: X25519Keyring[AccessStanza] | None = None,
    ) -> None:
        self.stanzas = tuple(stanzas)
        self.http = http
        self.keyring = keyring
        self._by_source: dict[int, tuple[IPAddress, Candidates]] = {}
        self._sets: dict[tuple[int, ...], Candidates] = {}
        # what mute takes: the screen's own verdicts, the only refusals that come back as such
        self._own = {
            id(r)
            for r in (_TOO_SHORT, _TOO_LONG, _NOT_SPA, _PREFIX_STUFFING, _NO_STANZA,
                      _UNKNOWN_KEY_ID, _NO_CLIENTS, _X25519_VERSION)
        }  # fmt: skip
        self._muted: dict[int, Refused] = {}
        self._counts: dict[int, int] = {}  # id of a muted refusal -> packets since last asked
        self.check: Check = self._checker()

    def candidates(self, src: IPAddress) -> Candidates:
        """The stanzas whose SOURCE matches ``src``, remembered per address object.

        Keyed by the address object's identity: hashing an ipaddress object
        runs Python code, and capture hands over one object per source anyway.
        Each entry holds its address, so an identity is never reused while
        it is in the cache; another object for the same address just misses.
        """
        entry = self._by_source.get(id(src))
        if entry is not None and entry[0] is src:
            return entry[1]
        found = tuple(s for s in self.stanzas if s.matches_source(src))
        numbers = tuple(s.number for s in found)
        candidates = self._sets.get(numbers)
        if candidates is None:
            candidates = self._sets[numbers] = _candidates(found)
            self._own.update(id(screen[1]) for screen in candidates.screens if screen is not None)
        if len(self._by_source) >= _CANDIDATE_CACHE:
            self._by_source.clear()  # a spoofed flood of many sources: start over
        self._by_source[id(src)] = (src, candidates)
        return candidates

    def x25519(self, data: bytes, src: IPAddress, client: X25519Client[AccessStanza]) -> Verdict:
        """The verdict on an x25519 packet whose key id is ``client``'s: at most one AEAD."""
        candidates = self.candidates(src)
        route = candidates.routes.get(client.shared.key_id)
        if route is None:
            route = candidates.routes[client.shared.key_id] = X25519Route(
                client, candidates.stanzas, self._own
            )
        if route.refused is not None:  # no stanza naming this key takes this source
            return route.refused
        if not route.direct:
            return X25519Way(route, None)  # DESTINATION or expiry first: the pipeline opens it
        try:
            return X25519Way(route, client.open(data))
        except InvalidPacket as failure:
            return route.failed(failure)

    def _checker(self) -> Check:
        """``check``: a closure over this screen's state (it runs for every packet of a flood)."""
        by_source, candidates_of, http = self._by_source, self.candidates, self.http
        counts = self._counts
        # module constants as the closure's own: a closure variable is quicker to read
        shortest, too_long, gpg_size = MIN_PACKET, MAX_PACKET, MIN_GPG_PACKET
        rijndael_prefix, gpg_prefix, wire_chars = _RIJNDAEL_PREFIX, _GPG_PREFIX, _WIRE_CHARS
        too_short_refused, too_long_refused = _TOO_SHORT, _TOO_LONG
        prefix_refused, not_spa_refused, no_stanza_refused = _PREFIX_STUFFING, _NOT_SPA, _NO_STANZA
        long_way, muted_verdict = LONG_WAY, MUTED
        mark, version_one, x25519 = _X25519_MARK, _X25519_VERSION_ONE, self.x25519
        keyring = self.keyring
        lookup = keyring.lookup if keyring else None  # None, or no client: nothing to look up
        unknown_id = _UNKNOWN_KEY_ID if lookup is not None else _NO_CLIENTS
        other_version = _X25519_VERSION
        # the last source's candidates: a flood mostly repeats its source
        last_src: IPAddress | None = None
        last_found = _candidates(())

        def check(data: bytes, src: IPAddress, inner: bool = False) -> Verdict:
            """The screen's verdict on ``data`` from ``src`` (``inner``: out of an HTTP request).

            A refusal (the same object each time for the same verdict);
            ``MUTED`` for a refusal past its log rate, counted here; the core's
            ``MacMatch`` when a candidate stanza's HMAC matched; or
            ``LONG_WAY`` when the stanzas have to decide one by one.
            """
            nonlocal last_src, last_found
            size = len(data)
            if size < shortest:
                refused = too_short_refused
            elif size >= too_long:  # the core's size rule (fwknop_core.size_problem)
                refused = too_long_refused
            elif http and not inner and data[:5].upper() == b"GET /":
                return long_way  # the SPA data is inside: the pipeline takes it out first
            elif data[0] == mark:  # x25519: one lookup on the clear key id, no cryptography
                client = lookup(data) if lookup is not None else None
                if client is not None:
                    verdict = x25519(data, src, client)
                    if type(verdict) is not Refused:
                        return verdict
                    refused = verdict
                elif data[1] == version_one:
                    refused = unknown_id
                else:
                    refused = other_version
            elif data.startswith(rijndael_prefix) or (
                size > gpg_size and data.startswith(gpg_prefix)
            ):
                refused = prefix_refused
            elif data.translate(None, wire_chars):
                refused = not_spa_refused
            else:
                if src is last_src:
                    found = last_found
                else:
                    entry = by_source.get(id(src))
                    found = (
                        entry[1] if entry is not None and entry[0] is src else candidates_of(src)
                    )
                    last_src, last_found = src, found
                if not found.stanzas:
                    refused = no_stanza_refused
                else:
                    screen = found.screens[size >= gpg_size]
                    if screen is None:
                        return long_way
                    first_match, refused = screen
                    match = first_match(data, 0)
                    if match is not None:
                        return match
            if not counts:  # nothing is muted: the common case when there is no flood
                return refused
            muted = counts.get(id(refused))
            if muted is None:
                return refused
            counts[id(refused)] = muted + 1
            return muted_verdict

        return check

    # -- muting ----------------------------------------------------------------

    def mute(self, refused: Refused) -> None:
        """From now on, count packets refused this way instead of answering them."""
        key = id(refused)
        # only the screen's own verdicts come back as the same object; a few at a time
        if key in self._own and key not in self._muted and len(self._muted) < _MUTED_MAX:
            self._muted[key] = refused
            self._counts[key] = 0

    def counts(self) -> list[tuple[Refused, int]]:
        """Packets counted for each muted refusal since the last call; they stay muted."""
        taken = [(self._muted[key], n) for key, n in self._counts.items() if n]
        for key in self._counts:
            self._counts[key] = 0
        return taken

    def release(self) -> list[tuple[Refused, int]]:
        """``counts``, and unmute everything (a new log window, or a new configuration)."""
        taken = self.counts()
        self._muted.clear()
        self._counts.clear()
        return taken
