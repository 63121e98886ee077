"""nftables NAT, natively: timeout maps and sets, so the kernel ends NAT grants on time too.

A NAT grant is a few elements, each with the grant's timeout, added in one
transaction; nothing is ever removed by us on time (the kernel does it, even
if the daemon was killed). Where they live:

* Our own table ``ip fwknopd``, with two NAT base chains, before the host's
  own NAT (priority ``dstnat - 10`` and ``srcnat - 10``; NAT bindings are
  made by the first chain that makes one, so this does not interfere with
  the host's rules for other traffic)::

    chain prerouting { type nat hook prerouting priority dstnat - 10;
        dnat ip to ip saddr . meta l4proto . th dport map @dnat4 :
                   ip saddr . meta l4proto . th dport map @dnat4_port
        dnat ip to ip saddr map @dnatall4 }
    chain postrouting { type nat hook postrouting priority srcnat - 10;
        snat ip to ip saddr . meta l4proto . ip daddr . th dport map @snat4
        ip saddr . meta l4proto . ip daddr . th dport @masq4 masquerade
        snat ip to ip saddr map @snatall4
        ip saddr @masqall4 masquerade }

  ``dnat4`` and ``dnat4_port`` map (client, protocol, port on the server) to
  the internal host and to its port; ``dnatall4`` a client to a host
  (``FORWARD_ALL``). With
  ``ENABLE_DESTINATION_RULE`` the DNAT keys also hold the address the client
  knocked (``ip daddr``). The SNAT maps and MASQUERADE sets are keyed by the
  client and the (translated) destination: only the client's own forwarded
  connections are rewritten (fwknopd's SNAT rule takes everyone's traffic to
  the internal service, and its MASQUERADE rewrites the source port to the
  access port; ours does neither).

* Accepts go where the host's filtering is: as for plain grants, an accept
  in a table of ours would not override the host's drop. Forwarded traffic
  is accepted by one rule and a set in the host's forward chain (found like
  the input chain; there is none to touch when nftables does not filter
  forwarding): ``ip saddr . meta l4proto . ip daddr . th dport @fwknop_fwd4
  accept`` (the internal host and port, after DNAT) and ``ip saddr
  @fwknop_fwdall4 accept``. Local NAT needs no forwarding: its accept is an
  element of the input set ``fwknop_in4`` for the internal port, after
  DNAT, like any grant.

Replies are the host's own ``ct state established,related`` rule's to
accept, as for any grant; a connection made while the grant was open
outlives it (its NAT binding lives in conntrack), as with iptables.
"""

from __future__ import annotations

import logging
from typing import Any

from .base import FirewallError, NatOpening, Opening
from .nftchains import ChainRef, describe, filter_base_chains, objects, prefer_dropping
from .nftrules import NftTarget
from .runner import NftRunner

__all__ = ["NAT_TABLE", "NftNat", "find_forward_chain"]

log = logging.getLogger("fwknop_server.firewall")

Json = dict[str, Any]
NAT_TABLE = "fwknopd"
RULE_COMMENT = "fwknopd"
_FWD = "fwknop_fwd4"
_FWD_ALL = "fwknop_fwdall4"
_SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
_DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
_PROTO = {"meta": {"key": "l4proto"}}
_DPORT = {"payload": {"protocol": "th", "field": "dport"}}


def find_forward_chain(ruleset: Json | None, near: ChainRef) -> ChainRef | None:
    """The host's forward filter chain: the one in ``near``'s table, else the only one."""
    chains = filter_base_chains(ruleset, "forward", skip_table=NAT_TABLE)
    same = [c for c in chains if (c["family"], c["table"]) == (near.family, near.table)]
    found = prefer_dropping(same or chains)
    if not found:
        return None
    if len(found) > 1:
        raise FirewallError(
            f"cannot tell which nftables forward chain to open NAT in ({describe(found)})"
        )
    return ChainRef.of(found[0])


def _concat(*parts: Any) -> Json:
    return {"concat": list(parts)}


class NftNat:
    """Builds (pure) and applies the NAT objects and elements of the nftables backend."""

    def __init__(self, *, destination_rule: bool = False) -> None:
        self.destination_rule = destination_rule
        self.forward: ChainRef | None = None

    # -- pure builders -------------------------------------------------------------

    def _dnat_key(self) -> list[str]:
        dst = ["ipv4_addr"] if self.destination_rule else []
        return ["ipv4_addr", *dst, "inet_proto", "inet_service"]

    def _dnatall_key(self) -> list[str] | str:
        return ["ipv4_addr", "ipv4_addr"] if self.destination_rule else "ipv4_addr"

    def table_commands(self) -> list[Json]:
        """Our table, chains, maps and sets (idempotent), and our chains' rules (remade)."""
        where = {"family": "ip", "table": NAT_TABLE}

        def chain(name: str, hook: str, prio: int) -> Json:
            return {"add": {"chain": {**where, "name": name, "type": "nat", "hook": hook,
                                      "prio": prio, "policy": "accept"}}}  # fmt: skip

        def collection(name: str, key: list[str] | str, data: list[str] | str | None) -> Json:
            body: Json = {**where, "name": name, "type": key, "flags": ["timeout"]}
            if data is None:
                return {"add": {"set": body}}
            return {"add": {"map": {**body, "map": data}}}

        def rule(chain_name: str, *expr: Json) -> Json:
            return {"add": {"rule": {**where, "chain": chain_name, "expr": list(expr)}}}

        def lookup(keys: list[Json]) -> Json:
            return keys[0] if len(keys) == 1 else _concat(*keys)

        dst = [_DADDR] if self.destination_rule else []
        pair = ["ipv4_addr", "inet_proto", "ipv4_addr", "inet_service"]
        return [
            {"add": {"table": {"family": "ip", "name": NAT_TABLE}}},
            chain("prerouting", "prerouting", -110),  # dstnat - 10: before the host's NAT
            chain("postrouting", "postrouting", 90),  # srcnat - 10
            # the address and the port in maps of their own: one map with both (an
            # "ipv4_addr . inet_service" value) crashes libnftables 1.0.6 parsing the rule
            collection("dnat4", self._dnat_key(), "ipv4_addr"),
            collection("dnat4_port", self._dnat_key(), "inet_service"),
            collection("dnatall4", self._dnatall_key(), "ipv4_addr"),
            collection("snat4", pair, "ipv4_addr"),
            collection("masq4", pair, None),
            collection("snatall4", "ipv4_addr", "ipv4_addr"),
            collection("masqall4", "ipv4_addr", None),
            {"flush": {"chain": {**where, "name": "prerouting"}}},
            {"flush": {"chain": {**where, "name": "postrouting"}}},
            rule("prerouting", {"dnat": {
                "family": "ip",
                "addr": {"map": {"key": lookup([_SADDR, *dst, _PROTO, _DPORT]), "data": "@dnat4"}},
                "port": {"map": {"key": lookup([_SADDR, *dst, _PROTO, _DPORT]),
                                 "data": "@dnat4_port"}},
            }}),
            rule("prerouting", {"dnat": {"family": "ip", "addr": {"map": {
                "key": lookup([_SADDR, *dst]), "data": "@dnatall4"}}}}),
            rule("postrouting", {"snat": {"family": "ip", "addr": {"map": {
                "key": _concat(_SADDR, _PROTO, _DADDR, _DPORT), "data": "@snat4"}}}}),
            rule("postrouting", {"match": {"op": "==", "right": "@masq4",
                                           "left": _concat(_SADDR, _PROTO, _DADDR, _DPORT)}},
                 {"masquerade": None}),
            rule("postrouting", {"snat": {"family": "ip", "addr": {"map": {
                "key": _SADDR, "data": "@snatall4"}}}}),
            rule("postrouting", {"match": {"op": "==", "left": _SADDR, "right": "@masqall4"}},
                 {"masquerade": None}),
        ]  # fmt: skip

    def forward_commands(self, have_rules: bool) -> list[Json]:
        """The forward sets in the host's forward chain's table, and its accept rules."""
        if self.forward is None:
            return []
        where = {"family": self.forward.family, "table": self.forward.table}
        commands: list[Json] = [
            {"add": {"set": {**where, "name": _FWD, "flags": ["timeout"],
                             "type": ["ipv4_addr", "inet_proto", "ipv4_addr", "inet_service"]}}},
            {"add": {"set": {**where, "name": _FWD_ALL, "flags": ["timeout"],
                             "type": "ipv4_addr"}}},
        ]  # fmt: skip
        if not have_rules:
            for right, left in (
                (f"@{_FWD_ALL}", _SADDR),
                (f"@{_FWD}", _concat(_SADDR, _PROTO, _DADDR, _DPORT)),
            ):
                match = {"match": {"op": "==", "left": left, "right": right}}
                commands.append({"insert": {"rule": {
                    **where, "chain": self.forward.chain, "comment": RULE_COMMENT,
                    "expr": [match, {"accept": None}]}}})  # fmt: skip
        return commands

    def elements(self, opening: NatOpening, input_target: NftTarget, now: int) -> list[Json]:
        """One grant's elements, each replaced (add, delete, add) so its timeout is this one's."""
        nat = opening.nat
        src = str(opening.source)
        address = str(nat.target)
        commands: list[Json] = []
        entries: list[tuple[Json, str, Any, Any]] = []  # (table, set or map, key, data)
        if nat.local:  # the internal port on the server itself: an input grant, after DNAT
            local = Opening(opening.source, nat.proto, nat.nat_port, opening.expires)
            commands += input_target.grant_document([(local, local)], now)["nftables"]
        elif self.forward is not None:
            fwd = {"family": self.forward.family, "table": self.forward.table}
            if nat.forward_all:
                entries.append((fwd, _FWD_ALL, src, None))
            else:
                entries.append((fwd, _FWD, _concat(src, nat.proto, address, nat.nat_port), None))
        ours = {"family": "ip", "table": NAT_TABLE}
        dst: list[str] = []
        if self.destination_rule:  # in UDP server mode the destination is not known
            dst = [str(opening.destination or "0.0.0.0")]  # noqa: S104
        if nat.dnat:
            if nat.forward_all:
                entries.append((ours, "dnatall4", _concat(src, *dst) if dst else src, address))
            else:
                key = _concat(src, *dst, nat.proto, nat.port)
                entries.append((ours, "dnat4", key, address))
                entries.append((ours, "dnat4_port", key, nat.nat_port))
        if nat.snat is not None:
            to = None if nat.snat.to is None else str(nat.snat.to)
            if nat.forward_all:
                entries.append((ours, "snatall4" if to else "masqall4", src, to))
            else:
                key = _concat(src, nat.proto, address, nat.nat_port)
                entries.append((ours, "snat4" if to else "masq4", key, to))
        return commands + self._replace(entries, max(1, opening.expires - now))

    @staticmethod
    def _replace(entries: list[tuple[Json, str, Any, Any]], timeout: int) -> list[Json]:
        commands: list[Json] = []
        for where, name, key, data in entries:
            elem: Json = {"elem": {"val": key, "timeout": timeout}}
            item: Any = elem if data is None else [elem, data]
            # an element's timeout cannot be changed in place, and one may be there already
            # (renewed, or from before a restart): add, delete, add, in the one transaction
            commands += [
                {"add": {"element": {**where, "name": name, "elem": [item]}}},
                {"delete": {"element": {**where, "name": name, "elem": [key]}}},
                {"add": {"element": {**where, "name": name, "elem": [item]}}},
            ]
        return commands

    # -- applying ------------------------------------------------------------------

    def start(self, run: NftRunner, input_target: NftTarget, *, flushed: bool = False) -> None:
        """Make our table and the forward sets and rules (keeping elements already there).

        ``flushed``: ``flush`` has just run (FLUSH_NFT_AT_INIT), so the forward chain is
        known and nothing of ours is left; the ruleset is not listed again.
        """
        if flushed:
            ruleset = None
        else:
            ruleset = run({"nftables": [{"list": {"ruleset": None}}]})
            self.forward = find_forward_chain(ruleset, input_target)
        have = bool(self._forward_handles(ruleset))
        commands = self.table_commands() + self.forward_commands(have)
        try:
            run({"nftables": commands})
        except FirewallError as exc:
            # our table from a run with other settings (ENABLE_DESTINATION_RULE): made anew
            log.info("nftables NAT: remaking table ip %s (%s)", NAT_TABLE, exc)
            self._delete_table(run, ruleset)
            run({"nftables": commands})
        where = self.forward or "no forward chain (nftables does not filter forwarding)"
        log.info("nftables: NAT grants go to table ip %s; forwarding opens in %s", NAT_TABLE, where)

    def _forward_handles(self, ruleset: Json | None) -> list[int]:
        fwd = self.forward
        if fwd is None:
            return []
        return [
            rule["handle"]
            for rule in objects(ruleset, "rule")
            if (rule["family"], rule["table"], rule["chain"]) == (fwd.family, fwd.table, fwd.chain)
            and rule.get("comment") == RULE_COMMENT
        ]

    @staticmethod
    def _delete_table(run: NftRunner, ruleset: Json | None) -> None:
        if any((t["family"], t["name"]) == ("ip", NAT_TABLE) for t in objects(ruleset, "table")):
            run({"nftables": [{"delete": {"table": {"family": "ip", "name": NAT_TABLE}}}]})

    def grant_document(self, opening: NatOpening, input_target: NftTarget, now: int) -> Json:
        """One transaction for one NAT grant."""
        return {"nftables": self.elements(opening, input_target, now)}

    def flush(self, run: NftRunner, input_target: NftTarget) -> None:
        """Remove our table, and our rules and sets in the host's forward chain."""
        ruleset = run({"nftables": [{"list": {"ruleset": None}}]})
        if self.forward is None:  # not started (--fw-flush): look for it
            self.forward = find_forward_chain(ruleset, input_target)
        fwd = self.forward
        commands: list[Json] = []
        if fwd is not None:
            where = {"family": fwd.family, "table": fwd.table}
            commands += [
                {"delete": {"rule": {**where, "chain": fwd.chain, "handle": h}}}
                for h in self._forward_handles(ruleset)
            ]
            present = {
                s["name"]
                for s in objects(ruleset, "set")
                if (s["family"], s["table"]) == (fwd.family, fwd.table)
            }
            commands += [
                {"delete": {"set": {**where, "name": name}}}
                for name in (_FWD, _FWD_ALL)
                if name in present
            ]
        if commands:
            run({"nftables": commands})
        self._delete_table(run, ruleset)

    def listing(self, run: NftRunner) -> str:
        """Our NAT maps and sets with their elements."""
        try:
            out = run({"nftables": [{"list": {"table": {"family": "ip", "name": NAT_TABLE}}}]})
        except FirewallError as exc:
            return f"# table ip {NAT_TABLE}: {exc}"
        lines = [f"# fwknopd NAT in table ip {NAT_TABLE}"]
        for item in (out or {}).get("nftables", []):
            kind = "map" if "map" in item else "set" if "set" in item else None
            if kind is None:
                continue
            lines.append(f"{kind} {item[kind]['name']}:")
            for entry in item[kind].get("elem", []):
                key, data = entry if isinstance(entry, list) else (entry, None)
                elem = key.get("elem", {"val": key}) if isinstance(key, dict) else {"val": key}
                to = "" if data is None else f" : {_text(data)}"
                lines.append(f"  {_text(elem['val'])}{to}  expires in {elem.get('expires', '?')}s")
        return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, dict) and "concat" in value:
        return " . ".join(str(v) for v in value["concat"])
    return str(value)
