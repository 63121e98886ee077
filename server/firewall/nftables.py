"""nftables: grants are elements of named sets with timeouts, so the kernel closes them on time.

In nftables an accept in one table does not override a drop in another: every
base chain on the input hook must accept a packet for it to get through. So
instead of a table of our own we put, into the table and chain that hold the
host's input policy (``NFT_TABLE`` / ``NFT_CHAIN``, found when unset), one
set per address family and one rule at the top of that chain::

    set fwknop_in4 { type ipv4_addr . inet_proto . inet_service; flags timeout; }
    ip saddr . meta l4proto . th dport @fwknop_in4 accept comment "fwknopd"

and touch nothing else there (with ``ENABLE_DESTINATION_RULE``, a second
set and rule per family keyed by the packet's destination too: see
``NftTarget``). A grant is one transaction adding an element
with a timeout; the kernel removes it when the timeout passes, even if the
daemon was killed. Everything sent to nft is JSON built by the pure functions
below; a grant's transaction also exists as netlink element commands, which
the daemon sends itself when it can (``netlink.py``: the same batch without
libnftables reading the ruleset back first, five times quicker).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import time

from ..config import ServerConfig
from ..nat import nat_settings
from ..vocab import PROTO_NUMBERS
from .base import Firewall, FirewallError, NatOpening, Opening
from .iptrules import IptablesRules
from .netlink import NftNetlink
from .nfqrules import IPTABLES, NFQ_TABLE, NfqChains, NfqSettings
from .nftchains import objects
from .nftnat import NftNat
from .nftrules import RULE_COMMENT, Json, NftTarget, find_input_chain
from .runner import CommandRunner, ElementRunner, NftRunner, SubprocessRunner, Tools

__all__ = ["Nftables"]

log = logging.getLogger("fwknop_server.firewall")


class Nftables(Firewall):
    """The nftables backend (``FIREWALL_TYPE nftables``)."""

    name = "nftables"

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Nftables:
        """``NFT_TABLE``/``NFT_CHAIN`` (found at start when unset), ``FLUSH_NFT_*``, NAT."""
        netlink = None
        try:
            netlink = NftNetlink()
        except FirewallError as exc:
            log.info("%s; grants go through libnftables", exc)
        nat = None
        destination_rule = config.flag("ENABLE_DESTINATION_RULE")
        if nat_settings(config).enabled:
            nat = NftNat(destination_rule=destination_rule)
        return cls(
            tools.nft(),
            netlink=netlink,
            table=config.text("NFT_TABLE"),
            chain=config.text("NFT_CHAIN"),
            flush_at_init=config.flag("FLUSH_NFT_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_NFT_AT_EXIT"),
            nat=nat,
            destination_rule=destination_rule,
            nfq=NfqSettings.from_config(config),
            run_command=tools.run,
        )

    @classmethod
    def probe(cls, config: ServerConfig, tools: Tools) -> str | None:
        """Whether the host's input policy lives in a native nftables chain."""
        try:
            target = find_input_chain(tools.nft()({"nftables": [{"list": {"ruleset": None}}]}))
        except FirewallError as exc:
            return str(exc)
        # iptables-nft keeps its rules in nft tables too, in upper-case chains (INPUT)
        if target.chain.isupper():
            return f"{target} belongs to iptables-nft"
        return None

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
        destination_rule: bool = False,
        nfq: NfqSettings | None = None,
        run_command: CommandRunner | None = None,
    ) -> None:
        super().__init__(flush_at_init=flush_at_init, flush_at_exit=flush_at_exit)
        self._run = run
        self.nfq = nfq  # ENABLE_NFQ_CAPTURE: the queue rule, in a table of ours
        # where the kernel has no nftables queue: fwknopd's NFQ chain made with iptables
        self._nfq_iptables = None
        if nfq is not None:
            chains = [IptablesRules(exe, nfq.chain_spec) for exe in IPTABLES]
            self._nfq_iptables = NfqChains(run_command or SubprocessRunner(), nfq, chains)
        self.destination_rule = destination_rule  # ENABLE_DESTINATION_RULE
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

    @property
    def supports_nat_ipv6(self) -> bool:  # type: ignore[override]
        """NAT for IPv6 clients: our ``ip6`` NAT table, when grants can be IPv6 at all."""
        return self.supports_nat and self.supports_ipv6

    def _resolve(self) -> NftTarget:
        if self.target is not None:
            return self.target
        if self._table and self._chain:
            family, _, table = self._table.partition(" ")
            target = NftTarget(family, table.strip(), self._chain)
            target.destination = self.destination_rule
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
            target.destination = self.destination_rule
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
        for name in target.set_names:
            where = {"family": target.family, "table": target.table, "name": name}
            try:
                out = self._run({"nftables": [{"list": {"set": where}}]})
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
        rules = target.rules()
        handles = self._our_rules(target)
        if len(handles) != len(rules):  # none yet, or an earlier run's of other settings
            where = {"family": target.family, "table": target.table, "chain": target.chain}
            commands += [{"delete": {"rule": {**where, "handle": h}}} for h in handles]
            commands += rules
        self._run({"nftables": commands})
        log.info("nftables: grants go to set(s) in %s", target)
        if self.nat is not None:
            self.nat.start(self._run, target, flushed=self.flush_at_init)
        if self.nfq is not None:
            self._start_nfq(self.nfq)

    def _start_nfq(self, nfq: NfqSettings) -> None:
        """The queue rule: in our table; with iptables' NFQUEUE target if the kernel has no
        nftables queue expression (it answers ENOENT for the rule)."""
        try:
            self._run({"nftables": nfq.nft_commands()})
            where = f"table inet {NFQ_TABLE}"
        except FirewallError as exc:
            if self._nfq_iptables is None or "No such file or directory" not in str(exc):
                raise
            with contextlib.suppress(FirewallError):  # the table made before the rule failed
                self._run({"nftables": [NfqSettings.nft_delete()]})
            self._nfq_iptables.start()
            where = f"iptables -t {nfq.table} {nfq.chain}: no nftables queue in this kernel"
        log.info("nftables: UDP port %d goes to NFQUEUE %d (%s)", nfq.port, nfq.queue, where)

    def _adopt(self, target: NftTarget, now: float) -> None:
        """Remember grants still in our sets (after a restart); the kernel drops expired ones."""
        for set_obj in self._our_sets(target):
            for item in set_obj.get("elem", []):
                elem = item.get("elem", item)
                value = elem.get("val", elem)
                parts = value.get("concat") if isinstance(value, dict) else None
                if not parts or len(parts) not in (3, 4):
                    continue
                expires = int(now) + int(elem.get("expires", elem.get("timeout", 0)))
                dst = ipaddress.ip_address(parts[1]) if len(parts) == 4 else None
                opening = Opening(
                    ipaddress.ip_address(parts[0]), str(parts[-2]), int(parts[-1]), expires, dst
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
        if self.nfq is not None:
            with contextlib.suppress(FirewallError):  # not there
                self._run({"nftables": [NfqSettings.nft_delete()]})
        if self._nfq_iptables is not None:
            with contextlib.suppress(FirewallError):  # no iptables here: nothing made with it
                self._nfq_iptables.flush()
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

    def listing_all(self) -> str:
        """The whole ruleset, as nft JSON (``--fw-list-all``)."""
        return json.dumps(self._run({"nftables": [{"list": {"ruleset": None}}]}), indent=1) + "\n"

    def listing(self) -> str:
        """``--fw-list``: each of our sets shown as fwknopd shows its iptables chain."""
        target = self._resolve()
        now = time.time()
        sets = [listed_set(s["name"], s.get("elem", []), now) for s in self._our_sets(target)]
        if self.nat is not None:
            sets.append(self.nat.listing(self._run) + "\n")
        text = f"Listing rules in fwknopd nftables sets of {target}...\n\n" + "\n".join(sets)
        return text.rstrip("\n")


_LISTED = "{:<4} {:<10} {:<4} {:<3} {:<20} {:<20} {}"


def listed_set(name: str, elements: list[Json], now: float) -> str:
    """A grant set's elements as ``iptables -L --line-numbers -n`` lists fwknopd's chain.

    Scripts written for fwknopd's ``--fw-list`` read each grant's source,
    port and ``/* _exp_<epoch> */`` from such lines; nft gives the seconds
    left, which become the epoch fwknopd's comment holds.
    """
    lines = [
        f"Set {name}",
        _LISTED.format("num", "target", "prot", "opt", "source", "destination", "")[:-1],
    ]
    for number, item in enumerate(elements, 1):
        elem = item.get("elem", item) if isinstance(item, dict) else {}
        value = elem.get("val", elem)
        parts = value.get("concat") if isinstance(value, dict) else None
        if not parts or len(parts) != 3:
            continue
        source, proto, port = str(parts[0]), str(parts[1]), parts[2]
        anywhere = "::/0" if ":" in source else "0.0.0.0/0"
        expires = int(now) + int(elem.get("expires", elem.get("timeout", 0)))
        match = f"{proto} dpt:{port} /* _exp_{expires} */"
        number_text = str(PROTO_NUMBERS.get(proto, proto))
        lines.append(_LISTED.format(number, "ACCEPT", number_text, "--", source, anywhere, match))
    return "\n".join(lines) + "\n"
