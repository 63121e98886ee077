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

IPv6 (ours: fwknopd has no IPv6 NAT): a grant for an IPv6 client goes to
the same objects with ``6`` for ``4`` in table ``ip6 fwknopd`` (``ip6``
addresses and payloads) and to ``fwknop_fwd6``/``fwknop_fwdall6`` in the
host's forward chain when that chain sees IPv6 (``inet`` or ``ip6``). The
internal host is an IPv6 address then (NAT does not cross families), and
SNAT_TRANSLATE_IP, which is IPv4, makes a MASQUERADE instead.

Replies are the host's own ``ct state established,related`` rule's to
accept, as for any grant; a connection made while the grant was open
outlives it (its NAT binding lives in conntrack), as with iptables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
_PROTO = {"meta": {"key": "l4proto"}}
_DPORT = {"payload": {"protocol": "th", "field": "dport"}}


@dataclass(frozen=True, slots=True)
class _Family:
    """One IP version's names: our table's family, the objects' suffix, types and payloads."""

    version: int
    family: str  # of our NAT table, and of the dnat/snat statements
    addr: str  # the address type of sets and maps

    @property
    def where(self) -> Json:
        """Our NAT table of this family (as an object's place)."""
        return {"family": self.family, "table": NAT_TABLE}

    @property
    def where_table(self) -> Json:
        """Our NAT table of this family (as the table itself)."""
        return {"family": self.family, "name": NAT_TABLE}

    def name(self, stem: str) -> str:
        """A set or map of this family: ``dnat`` -> ``dnat4`` / ``dnat6``."""
        return f"{stem}{self.version}"

    @property
    def saddr(self) -> Json:
        """The packet's source address."""
        return {"payload": {"protocol": self.family, "field": "saddr"}}

    @property
    def daddr(self) -> Json:
        """The packet's destination address."""
        return {"payload": {"protocol": self.family, "field": "daddr"}}

    @property
    def fwd(self) -> str:
        """The forward set (client, protocol, internal host, port)."""
        return f"fwknop_fwd{self.version}"

    @property
    def fwd_all(self) -> str:
        """The FORWARD_ALL set (client)."""
        return f"fwknop_fwdall{self.version}"


_V4 = _Family(4, "ip", "ipv4_addr")
_V6 = _Family(6, "ip6", "ipv6_addr")
FAMILIES = {4: _V4, 6: _V6}


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

    def _dnat_key(self, fam: _Family = _V4) -> list[str]:
        dst = [fam.addr] if self.destination_rule else []
        return [fam.addr, *dst, "inet_proto", "inet_service"]

    def _dnatall_key(self, fam: _Family = _V4) -> list[str] | str:
        return [fam.addr, fam.addr] if self.destination_rule else fam.addr

    def table_commands(self, versions: tuple[int, ...] = (4,)) -> list[Json]:
        """Our table of each IP version, its chains, maps and sets (idempotent), and our
        chains' rules (remade)."""
        return [c for version in versions for c in self._table_commands(FAMILIES[version])]

    def _table_commands(self, fam: _Family) -> list[Json]:
        where = fam.where
        n = fam.name

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

        saddr, daddr, family = fam.saddr, fam.daddr, fam.family
        dst = [daddr] if self.destination_rule else []
        pair = [fam.addr, "inet_proto", fam.addr, "inet_service"]
        return [
            {"add": {"table": {"family": family, "name": NAT_TABLE}}},
            chain("prerouting", "prerouting", -110),  # dstnat - 10: before the host's NAT
            chain("postrouting", "postrouting", 90),  # srcnat - 10
            # the address and the port in maps of their own: one map with both (an
            # "ipv4_addr . inet_service" value) crashes libnftables 1.0.6 parsing the rule
            collection(n("dnat"), self._dnat_key(fam), fam.addr),
            collection(n("dnat") + "_port", self._dnat_key(fam), "inet_service"),
            collection(n("dnatall"), self._dnatall_key(fam), fam.addr),
            collection(n("snat"), pair, fam.addr),
            collection(n("masq"), pair, None),
            collection(n("snatall"), fam.addr, fam.addr),
            collection(n("masqall"), fam.addr, None),
            {"flush": {"chain": {**where, "name": "prerouting"}}},
            {"flush": {"chain": {**where, "name": "postrouting"}}},
            rule("prerouting", {"dnat": {
                "family": family,
                "addr": {"map": {"key": lookup([saddr, *dst, _PROTO, _DPORT]),
                                 "data": "@" + n("dnat")}},
                "port": {"map": {"key": lookup([saddr, *dst, _PROTO, _DPORT]),
                                 "data": "@" + n("dnat") + "_port"}},
            }}),
            rule("prerouting", {"dnat": {"family": family, "addr": {"map": {
                "key": lookup([saddr, *dst]), "data": "@" + n("dnatall")}}}}),
            rule("postrouting", {"snat": {"family": family, "addr": {"map": {
                "key": _concat(saddr, _PROTO, daddr, _DPORT), "data": "@" + n("snat")}}}}),
            rule("postrouting", {"match": {"op": "==", "right": "@" + n("masq"),
                                           "left": _concat(saddr, _PROTO, daddr, _DPORT)}},
                 {"masquerade": None}),
            rule("postrouting", {"snat": {"family": family, "addr": {"map": {
                "key": saddr, "data": "@" + n("snatall")}}}}),
            rule("postrouting", {"match": {"op": "==", "left": saddr, "right": "@" + n("masqall")}},
                 {"masquerade": None}),
        ]  # fmt: skip

    def forward_families(self, versions: tuple[int, ...] = (4,)) -> list[_Family]:
        """The IP versions whose forwarded grants the host's forward chain can see."""
        if self.forward is None:
            return []
        seen = {"ip": (4,), "ip6": (6,)}.get(self.forward.family, (4, 6))
        return [FAMILIES[v] for v in versions if v in seen]

    def forward_commands(self, handles: list[int], versions: tuple[int, ...] = (4,)) -> list[Json]:
        """The forward sets in the host's forward chain's table, and its accept rules
        (remade unless ``handles``, our rules there, are as many as we make)."""
        if self.forward is None:
            return []
        where = {"family": self.forward.family, "table": self.forward.table}
        families = self.forward_families(versions)
        commands: list[Json] = []
        for fam in families:
            commands += [
                {"add": {"set": {**where, "name": fam.fwd, "flags": ["timeout"],
                                 "type": [fam.addr, "inet_proto", fam.addr, "inet_service"]}}},
                {"add": {"set": {**where, "name": fam.fwd_all, "flags": ["timeout"],
                                 "type": fam.addr}}},
            ]  # fmt: skip
        if len(handles) == 2 * len(families):
            return commands
        chain = {**where, "chain": self.forward.chain}
        commands += [{"delete": {"rule": {**chain, "handle": h}}} for h in handles]
        for fam in families:
            for right, left in (
                (f"@{fam.fwd_all}", fam.saddr),
                (f"@{fam.fwd}", _concat(fam.saddr, _PROTO, fam.daddr, _DPORT)),
            ):
                match = {"match": {"op": "==", "left": left, "right": right}}
                rule = {**chain, "comment": RULE_COMMENT, "expr": [match, {"accept": None}]}
                commands.append({"insert": {"rule": rule}})
        return commands

    def elements(self, opening: NatOpening, input_target: NftTarget, now: int) -> list[Json]:
        """One grant's elements, each replaced (add, delete, add) so its timeout is this one's."""
        nat = opening.nat
        fam = FAMILIES[opening.source.version]
        if nat.target.version != fam.version:  # the pipeline refuses such a request
            raise FirewallError(f"NAT from {opening.source} to {nat.target} crosses IP versions")
        n = fam.name
        src = str(opening.source)
        address = str(nat.target)
        commands: list[Json] = []
        entries: list[tuple[Json, str, Any, Any]] = []  # (table, set or map, key, data)
        if nat.local:  # the internal port on the server itself: an input grant, after DNAT
            local = Opening(opening.source, nat.proto, nat.nat_port, opening.expires)
            commands += input_target.grant_document([(local, local)], now)["nftables"]
        elif fam in self.forward_families((fam.version,)) and self.forward is not None:
            fwd = {"family": self.forward.family, "table": self.forward.table}
            if nat.forward_all:
                entries.append((fwd, fam.fwd_all, src, None))
            else:
                entries.append((fwd, fam.fwd, _concat(src, nat.proto, address, nat.nat_port), None))
        ours = fam.where
        dst: list[str] = []
        if self.destination_rule:  # in UDP server mode the destination is not known
            dst = [str(opening.destination or ("::" if fam.version == 6 else "0.0.0.0"))]  # noqa: S104
        if nat.dnat:
            if nat.forward_all:
                entries.append((ours, n("dnatall"), _concat(src, *dst) if dst else src, address))
            else:
                key = _concat(src, *dst, nat.proto, nat.port)
                entries.append((ours, n("dnat"), key, address))
                entries.append((ours, n("dnat") + "_port", key, nat.nat_port))
        if nat.snat is not None:
            to = None if nat.snat.to is None else str(nat.snat.to)
            if nat.forward_all:
                entries.append((ours, n("snatall") if to else n("masqall"), src, to))
            else:
                key = _concat(src, nat.proto, address, nat.nat_port)
                entries.append((ours, n("snat") if to else n("masq"), key, to))
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
        versions = tuple(v for v in (4, 6) if v in input_target.versions) or (4,)
        handles = self._forward_handles(ruleset)
        commands = self.table_commands(versions) + self.forward_commands(handles, versions)
        try:
            run({"nftables": commands})
        except FirewallError as exc:
            # our table from a run with other settings (ENABLE_DESTINATION_RULE): made anew
            log.info("nftables NAT: remaking table ip %s (%s)", NAT_TABLE, exc)
            self._delete_table(run, ruleset)
            run({"nftables": commands})
        where = self.forward or "no forward chain (nftables does not filter forwarding)"
        tables = " and ".join(f"{FAMILIES[v].family} {NAT_TABLE}" for v in versions)
        log.info("nftables: NAT grants go to table %s; forwarding opens in %s", tables, where)

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
        tables = {(t["family"], t["name"]) for t in objects(ruleset, "table")}
        for fam in FAMILIES.values():
            if (fam.family, NAT_TABLE) in tables:
                run(
                    {"nftables": [{"delete": {"table": {"family": fam.family, "name": NAT_TABLE}}}]}
                )

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
                for fam in FAMILIES.values()
                for name in (fam.fwd, fam.fwd_all)
                if name in present
            ]
        if commands:
            run({"nftables": commands})
        self._delete_table(run, ruleset)

    def listing(self, run: NftRunner) -> str:
        """Our NAT maps and sets with their elements (IPv4's table, and IPv6's if there)."""
        lines: list[str] = []
        for fam in FAMILIES.values():
            try:
                out = run({"nftables": [{"list": {"table": fam.where_table}}]})
            except FirewallError as exc:
                if fam.version == 4:
                    lines.append(f"# table ip {NAT_TABLE}: {exc}")
                continue
            lines += self._listed(fam, out)
        return "\n".join(lines)

    @staticmethod
    def _listed(fam: _Family, out: Json | None) -> list[str]:
        lines = [f"# fwknopd NAT in table {fam.family} {NAT_TABLE}"]
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
        return lines


def _text(value: Any) -> str:
    if isinstance(value, dict) and "concat" in value:
        return " . ".join(str(v) for v in value["concat"])
    return str(value)
