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

__all__ = ["RULE_COMMENT", "SETS", "Json", "NftTarget", "find_input_chain"]

RULE_COMMENT = "fwknopd"
SETS = {4: ("fwknop_in4", "ipv4_addr", "ip"), 6: ("fwknop_in6", "ipv6_addr", "ip6")}
Json = dict[str, Any]


class NftTarget(ChainRef):
    """The table and input chain our set and rule live in."""

    @property
    def versions(self) -> tuple[int, ...]:
        """IP versions this table can match: both in ``inet``, IPv4 only in ``ip``."""
        return (4, 6) if self.family == "inet" else (4,)

    def _where(self) -> Json:
        return {"family": self.family, "table": self.table}

    # -- pure builders ---------------------------------------------------------

    def set_objects(self) -> list[Json]:
        """``add set`` commands (idempotent) for each address family of the table."""
        return [
            {
                "add": {
                    "set": {
                        **self._where(),
                        "name": SETS[v][0],
                        "type": [SETS[v][1], "inet_proto", "inet_service"],
                        "flags": ["timeout"],
                    }
                }
            }
            for v in self.versions
        ]

    def rule(self, version: int) -> Json:
        """The one accept rule for ``version``, inserted at the top of the chain."""
        name, _type, proto = SETS[version]
        match = {
            "match": {
                "op": "==",
                "left": {
                    "concat": [
                        {"payload": {"protocol": proto, "field": "saddr"}},
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

    def element(self, opening: Opening, *, remove: bool = False, now: int = 0) -> Json:
        """``add`` (with the remaining timeout) or ``delete`` of one element."""
        name = SETS[opening.source.version][0]
        value = {"concat": [str(opening.source), opening.proto, opening.port]}
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
            return ElementCommand(
                add,
                self.family,
                self.table,
                SETS[opening.source.version][0],
                element_key(opening.source, opening.proto, opening.port),
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
        commands += [
            {"delete": {"set": {**self._where(), "name": SETS[v][0]}}} for v in self.versions
        ]
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
