"""Our nftables objects as pure JSON builders: the grant sets, their rule, a grant's elements.

Shared by the nftables backend (``nftables.py``) and its NAT (``nftnat.py``);
where they live is the host's input chain, found or configured
(``find_input_chain``). The module docstring of ``nftables.py`` explains why.
"""

from __future__ import annotations

from typing import Any

from .base import FirewallError, Opening
from .netlink import ElementCommand, element_key
from .nftchains import ChainRef, describe, filter_base_chains, prefer_dropping

__all__ = ["DST_SETS", "RULE_COMMENT", "SETS", "Json", "NftTarget", "find_input_chain"]

RULE_COMMENT = "fwknopd"
SETS = {4: ("fwknop_in4", "ipv4_addr", "ip"), 6: ("fwknop_in6", "ipv6_addr", "ip6")}
DST_SETS = {4: "fwknop_dst4", 6: "fwknop_dst6"}  # ENABLE_DESTINATION_RULE: by destination too
Json = dict[str, Any]


def _keyed_by_destination(opening: Opening) -> bool:
    """Whether the opening goes to a destination set: it has a destination of its family."""
    dst = opening.destination
    return dst is not None and dst.version == opening.source.version


class NftTarget(ChainRef):
    """The table and input chain our sets and rules live in.

    With ``destination`` (``ENABLE_DESTINATION_RULE``) there is a second set
    per family, keyed by the packet's destination too, and its own rule::

        ip saddr . ip daddr . meta l4proto . th dport @fwknop_dst4 accept

    A grant whose destination is known goes there, so it opens only that
    address of the server, as fwknopd's ``-d`` does; one whose destination is
    not known (the UDP server) goes to the first set, as fwknopd's
    ``-d 0.0.0.0/0``.
    """

    def __init__(self, family: str, table: str, chain: str, *, destination: bool = False) -> None:
        super().__init__(family, table, chain)
        self.destination = destination

    @property
    def versions(self) -> tuple[int, ...]:
        """IP versions this table can match: both in ``inet``, IPv4 only in ``ip``."""
        return (4, 6) if self.family == "inet" else (4,)

    @property
    def set_names(self) -> list[str]:
        """Every set of ours in this table (both kinds, whatever this run uses)."""
        return [name for v in self.versions for name in (SETS[v][0], DST_SETS[v])]

    def _where(self) -> Json:
        return {"family": self.family, "table": self.table}

    # -- pure builders ---------------------------------------------------------

    def set_objects(self) -> list[Json]:
        """``add set`` commands (idempotent) for each address family of the table."""
        sets = []
        for v in self.versions:
            sets.append((SETS[v][0], [SETS[v][1], "inet_proto", "inet_service"]))
            if self.destination:
                sets.append((DST_SETS[v], [SETS[v][1], SETS[v][1], "inet_proto", "inet_service"]))
        return [
            {"add": {"set": {**self._where(), "name": name, "type": key, "flags": ["timeout"]}}}
            for name, key in sets
        ]

    def rules(self) -> list[Json]:
        """Every accept rule of ours, in the order to insert them (the first ends up last)."""
        made = []
        for v in reversed(self.versions):
            if self.destination:
                made.append(self.rule(v, destination=True))
            made.append(self.rule(v))
        return made

    def rule(self, version: int, *, destination: bool = False) -> Json:
        """The accept rule of ``version``'s set (or destination set), inserted at the top."""
        name, _type, proto = SETS[version]
        keys = [{"payload": {"protocol": proto, "field": "saddr"}}]
        if destination:
            name = DST_SETS[version]
            keys.append({"payload": {"protocol": proto, "field": "daddr"}})
        match = {
            "match": {
                "op": "==",
                "left": {
                    "concat": [
                        *keys,
                        {"meta": {"key": "l4proto"}},
                        {"payload": {"protocol": "th", "field": "dport"}},
                    ]
                },
                "right": f"@{name}",
            }
        }
        return {
            "insert": {
                "rule": {
                    **self._where(),
                    "chain": self.chain,
                    "comment": RULE_COMMENT,
                    "expr": [match, {"accept": None}],
                }
            }
        }

    def _set_of(self, opening: Opening) -> tuple[str, list[Any]]:
        """The set an opening's element goes to, and the parts of its key."""
        version = opening.source.version
        if self.destination and _keyed_by_destination(opening):
            parts = [str(opening.source), str(opening.destination), opening.proto, opening.port]
            return DST_SETS[version], parts
        return SETS[version][0], [str(opening.source), opening.proto, opening.port]

    def element(self, opening: Opening, *, remove: bool = False, now: int = 0) -> Json:
        """``add`` (with the remaining timeout) or ``delete`` of one element."""
        name, parts = self._set_of(opening)
        value = {"concat": parts}
        body: Json = {**self._where(), "name": name}
        if remove:
            body["elem"] = [value]
            return {"delete": {"element": body}}
        body["elem"] = [{"elem": {"val": value, "timeout": max(1, opening.expires - now)}}]
        return {"add": {"element": body}}

    def grant_document(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> Json:
        """One transaction for a grant: add each element; replace ones already present."""
        commands: list[Json] = []
        for opening, current in wanted:
            if current is not None:
                # an element's timeout cannot be changed in place: add (a no-op if it is
                # there), delete, add again with the new timeout, all in one transaction
                commands.append(self.element(current, now=now))
                commands.append(self.element(current, remove=True))
            commands.append(self.element(opening, now=now))
        return {"nftables": commands}

    def grant_commands(
        self, wanted: list[tuple[Opening, Opening | None]], now: int
    ) -> list[ElementCommand]:
        """``grant_document`` as netlink element commands (``netlink.py``): the same transaction."""
        commands: list[ElementCommand] = []

        def command(opening: Opening, *, add: bool) -> ElementCommand:
            name, _parts = self._set_of(opening)
            dst = opening.destination if name in DST_SETS.values() else None
            return ElementCommand(
                add,
                self.family,
                self.table,
                name,
                element_key(opening.source, opening.proto, opening.port, dst),
                max(1, opening.expires - now) * 1000 if add else 0,
            )

        for opening, current in wanted:
            if current is not None:
                commands.append(command(current, add=True))
                commands.append(command(current, add=False))
            commands.append(command(opening, add=True))
        return commands

    def flush_document(self, handles: list[int]) -> Json:
        """Delete our rules (by handle) and our sets."""
        commands: list[Json] = [
            {"delete": {"rule": {**self._where(), "chain": self.chain, "handle": h}}}
            for h in handles
        ]
        where = self._where()
        commands += [{"delete": {"set": {**where, "name": name}}} for name in self.set_names]
        return {"nftables": commands}


def find_input_chain(ruleset: Json | None) -> NftTarget:
    """The base chain holding the host's input policy; ``FirewallError`` if unclear."""
    chains = prefer_dropping(filter_base_chains(ruleset, "input"))
    if len(chains) != 1:
        raise FirewallError(
            "cannot tell which nftables input chain holds the host's policy (found: "
            f"{describe(chains)}); set NFT_TABLE (e.g. 'inet filter') and NFT_CHAIN (e.g. 'input') "
            "in fwknopd.conf"
        )
    c = chains[0]
    return NftTarget(c["family"], c["table"], c["name"])
