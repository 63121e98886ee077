"""The fingerprints of recent SYNs, by connection: ``REQUIRE_OS`` for SPA packets sent over TCP.

Our extension of fwknop 1.x (which fingerprinted knocks only): an SPA stanza
with ``REQUIRE_OS`` accepts a packet that came over a TCP connection whose
SYN the knock listener saw, and whose fingerprint meets the requirement.
The knock listener remembers each such SYN here under its connection's
addresses and ports; the pipeline looks the packet's connection up. Bounded:
the oldest SYN goes when a new one needs room (a SYN is looked up a round
trip after it was seen, so only a flood of new connections, faster than
``limit`` per round trip, could push one out; the packet is then refused,
never let through).
"""

from __future__ import annotations

from collections import OrderedDict

from .wire import Address, Knock, SynFingerprint

__all__ = ["SynMemory"]

Connection = tuple[Address, int, Address, int]  # source, source port, destination, port


class SynMemory:
    """The last ``limit`` SYNs' fingerprints, by connection."""

    def __init__(self, limit: int = 4096) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._syns: OrderedDict[Connection, SynFingerprint] = OrderedDict()

    def __len__(self) -> int:
        return len(self._syns)

    def remember(self, knock: Knock) -> None:
        """Keep the fingerprint of a SYN (anything else is ignored)."""
        if knock.syn is None or knock.destination is None or knock.port is None:
            return
        key = (knock.source, knock.sport, knock.destination, knock.port)
        self._syns[key] = knock.syn
        self._syns.move_to_end(key)
        if len(self._syns) > self.limit:
            self._syns.popitem(last=False)

    def find(
        self, source: Address, sport: int, destination: Address, dport: int
    ) -> SynFingerprint | None:
        """The fingerprint of the SYN that opened this connection, if it was seen."""
        return self._syns.get((source, sport, destination, dport))
