"""nftables: grants are elements of named sets with timeouts, so the kernel closes them on time.

In nftables an accept in one table does not override a drop in another: every
base chain on the input hook must accept a packet for it to get through. So
instead of a table of our own we put, into the table and chain that hold the
host's input policy (``NFT_TABLE`` / ``NFT_CHAIN``, found when unset), one
set per address family and one rule at the top of that chain::

    set fwknop_in4 { type ipv4_addr . inet_proto . inet_service; flags timeout; }
    ip saddr . meta l4proto . th dport @fwknop_in4 accept comment "fwknopd"

and touch nothing else there. A grant is one transaction adding an element
with a timeout; the kernel removes it when the timeout passes, even if the
daemon was killed. Everything sent to nft is JSON built by the pure functions
below; a grant's transaction also exists as netlink element commands, which
the daemon sends itself when it can (``netlink.py``: the same batch without
libnftables reading the ruleset back first, five times quicker).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from .base import Firewall, FirewallError, NatOpening, Opening
from .netlink import ElementCommand, element_key
from .nftchains import ChainRef, describe, filter_base_chains, objects, prefer_dropping
from .nftnat import NftNat
from .runner import ElementRunner, NftRunner

__all__ = ["NftTarget", "Nftables", "find_input_chain"]

log = logging.getLogger("fwknop_server.firewall")

RULE_COMMENT = "fwknopd"
_SETS = {4: ("fwknop_in4", "ipv4_addr", "ip"), 6: ("fwknop_in6", "ipv6_addr", "ip6")}
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
                        "name": _SETS[v][0],
                        "type": [_SETS[v][1], "inet_proto", "inet_service"],
                        "flags": ["timeout"],
                    }
                }
            }
            for v in self.versions
        ]

    def rule(self, version: int) -> Json:
        """The one accept rule for ``version``, inserted at the top of the chain."""
        name, _type, proto = _SETS[version]
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
        name = _SETS[opening.source.version][0]
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
                _SETS[opening.source.version][0],
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
            {"delete": {"set": {**self._where(), "name": _SETS[v][0]}}} for v in self.versions
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


class Nftables(Firewall):
    """The nftables backend (``FIREWALL_TYPE nftables``)."""

    name = "nftables"

    def __init__(
        self,
        run: NftRunner,
        *,
        netlink: ElementRunner | None = None,
        table: str | None = None,
        chain: str | None = None,
        flush_at_init: bool = True,
        flush_at_exit: bool = True,
        nat: NftNat | None = None,
    ) -> None:
        super().__init__(flush_at_init=flush_at_init, flush_at_exit=flush_at_exit)
        self._run = run
        self._netlink = netlink
        self.nat = nat  # NAT grants (nftnat.py), when forwarding or local NAT is on
        self.supports_nat = nat is not None
        self._table = table
        self._chain = chain
        self.target: NftTarget | None = None

    @property
    def in_process(self) -> bool:  # type: ignore[override]
        """Grants go through netlink or libnftables (not the ``nft`` command): no fork."""
        return self._netlink is not None or bool(getattr(self._run, "in_process", False))

    @property
    def supports_ipv6(self) -> bool:  # type: ignore[override]
        """An ``inet`` table matches IPv6 too."""
        return self.target is not None and 6 in self.target.versions

    def _resolve(self) -> NftTarget:
        if self.target is not None:
            return self.target
        if self._table and self._chain:
            family, _, table = self._table.partition(" ")
            target = NftTarget(family, table.strip(), self._chain)
            chain = self._run(
                {
                    "nftables": [
                        {
                            "list": {
                                "chain": {
                                    "family": target.family,
                                    "table": target.table,
                                    "name": target.chain,
                                }
                            }
                        }
                    ]
                }
            )
            if not objects(chain, "chain"):
                raise FirewallError(f"nftables chain {target} does not exist")
        else:
            target = find_input_chain(self._run({"nftables": [{"list": {"ruleset": None}}]}))
            if self._table or self._chain:
                log.warning("NFT_TABLE and NFT_CHAIN go together; using %s", target)
        self.target = target
        return target

    def _our_rules(self, target: NftTarget) -> list[int]:
        listing = self._run(
            {
                "nftables": [
                    {
                        "list": {
                            "chain": {
                                "family": target.family,
                                "table": target.table,
                                "name": target.chain,
                            }
                        }
                    }
                ]
            }
        )
        return [r["handle"] for r in objects(listing, "rule") if r.get("comment") == RULE_COMMENT]

    def _our_sets(self, target: NftTarget) -> list[Json]:
        sets = []
        for v in target.versions:
            try:
                out = self._run(
                    {
                        "nftables": [
                            {
                                "list": {
                                    "set": {
                                        "family": target.family,
                                        "table": target.table,
                                        "name": _SETS[v][0],
                                    }
                                }
                            }
                        ]
                    }
                )
            except FirewallError:
                continue  # not there
            sets += objects(out, "set")
        return sets

    def start(self, now: float) -> None:
        """Create our sets and rule in the host's input chain; adopt or flush existing grants."""
        target = self._resolve()
        if self.flush_at_init:
            self.flush()
        else:
            self._adopt(target, now)
        commands = target.set_objects()
        if not self._our_rules(target):
            commands += [target.rule(v) for v in reversed(target.versions)]
        self._run({"nftables": commands})
        log.info("nftables: grants go to set(s) in %s", target)
        if self.nat is not None:
            self.nat.start(self._run, target, flushed=self.flush_at_init)

    def _adopt(self, target: NftTarget, now: float) -> None:
        """Remember grants still in our sets (after a restart); the kernel drops expired ones."""
        for set_obj in self._our_sets(target):
            for item in set_obj.get("elem", []):
                elem = item.get("elem", item)
                value = elem.get("val", elem)
                parts = value.get("concat") if isinstance(value, dict) else None
                if not parts or len(parts) != 3:
                    continue
                expires = int(now) + int(elem.get("expires", elem.get("timeout", 0)))
                opening = Opening(
                    ipaddress.ip_address(parts[0]), str(parts[1]), int(parts[2]), expires
                )
                self.open[opening.key] = opening
        if self.open:
            log.info("nftables: %d grant(s) still open from before", len(self.open))

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        target = self._resolve()
        for opening, _current in wanted:
            if opening.source.version not in target.versions:
                raise FirewallError(f"table {target} cannot match IPv{opening.source.version}")
        if self._netlink is not None:
            self._netlink(target.grant_commands(wanted, now))
        else:
            self._run(target.grant_document(wanted, now))

    def _apply_nat(self, opening: NatOpening, current: NatOpening | None, now: int) -> None:
        assert self.nat is not None  # noqa: S101 - Firewall.grant checks supports_nat
        # one transaction; the elements replace whatever is there (``current`` included)
        self._run(self.nat.grant_document(opening, self._resolve(), now))

    def flush(self) -> None:
        """Remove our rule and sets (grants in them go with them)."""
        target = self._resolve()
        if self.nat is not None:
            self.nat.flush(self._run, target)
            self.nat_open.clear()
        handles = self._our_rules(target)
        present = {s["name"] for s in self._our_sets(target)}
        document = target.flush_document(handles)
        document["nftables"] = [
            c
            for c in document["nftables"]
            if "rule" in c["delete"] or c["delete"]["set"]["name"] in present
        ]
        if document["nftables"]:
            self._run(document)
        self.open.clear()

    def listing(self) -> str:
        """Our rule and the elements of our sets, as nft lists them."""
        target = self._resolve()
        lines = [f"# fwknopd grants in {target}"]
        for set_obj in self._our_sets(target):
            lines.append(f"set {set_obj['name']}:")
            for item in set_obj.get("elem", []):
                elem = item.get("elem", item)
                parts = elem.get("val", {}).get("concat", [])
                lines.append(
                    f"  {' . '.join(str(p) for p in parts)}  expires in {elem.get('expires', '?')}s"
                )
        if self.nat is not None:
            lines.append(self.nat.listing(self._run))
        return "\n".join(lines)
