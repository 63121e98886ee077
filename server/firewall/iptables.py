"""iptables: fwknopd's own chains and ``_exp_<epoch>`` comments, so existing setups keep working.

Rules go into ``FWKNOP_INPUT`` (from ``IPT_INPUT_ACCESS``), jumped to from
INPUT, exactly as the C fwknopd makes them (server-config.md §4). What
differs is expiry: fwknopd lists the chain over and over to find expired
rules; we know when each rule expires and delete it then, by its spec. A
periodic scan (``RULES_CHECK_THRESHOLD`` > 0) still removes ``_exp_`` rules
that other tools, or an earlier run, left behind.

IPv6 (which fwknopd 2.6 never opens for): with ``ENABLE_IP6TABLES Y``, when
``ip6tables`` sits beside ``FIREWALL_EXE`` and answers, the same chain and
jump are made there too, and a grant for an IPv6 source goes into it
(destination ``::/0``), so the iptables backend opens for IPv6 clients and
IPv6 allow IPs as nftables does.

Every command is an argv list built by the pure functions below.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..config import ServerConfig
from .base import Firewall, FirewallError, NatOpening, Opening, OpeningKey
from .iptnat import IptablesNat, iptables_nat
from .iptrules import ChainKeeper, IptablesRules, anywhere, parse_rule
from .runner import CommandRunner, Tools

__all__ = ["Iptables", "ip6tables_beside"]

log = logging.getLogger("fwknop_server.firewall")


class Iptables(Firewall, ChainKeeper):
    """The iptables backend (``FIREWALL_TYPE iptables``)."""

    name = "iptables"
    default_exe = "/usr/sbin/iptables"

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Iptables:
        """``IPT_INPUT_ACCESS``, ``FLUSH_IPT_*``, ``ENABLE_RULE_PREPEND``, IPv6, the NAT chains."""
        exe = config.firewall_exe(cls.default_exe)
        spec, prepend = config.chain("IPT_INPUT_ACCESS"), config.flag("ENABLE_RULE_PREPEND")
        rules = IptablesRules(exe, spec, prepend=prepend)
        exe6 = ip6tables_beside(exe, tools.run) if config.flag("ENABLE_IP6TABLES") else None
        return cls(
            tools.run,
            rules,
            flush_at_init=config.flag("FLUSH_IPT_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_IPT_AT_EXIT"),
            nat=iptables_nat(config, tools.run, rules),
            rules6=IptablesRules(exe6, spec, prepend=prepend) if exe6 else None,
        )

    @classmethod
    def probe(cls, config: ServerConfig, tools: Tools) -> str | None:
        """Whether ``FIREWALL_EXE`` answers for INPUT (legacy iptables, or iptables-nft)."""
        exe = config.firewall_exe(cls.default_exe)
        status, _out, err = tools.run([exe, "-w", "-S", "INPUT"])
        return None if status == 0 else err.strip() or f"{exe} exit {status}"

    def __init__(
        self,
        run: CommandRunner,
        rules: IptablesRules,
        *,
        flush_at_init: bool = True,
        flush_at_exit: bool = True,
        nat: IptablesNat | None = None,
        rules6: IptablesRules | None = None,
    ) -> None:
        super().__init__(flush_at_init=flush_at_init, flush_at_exit=flush_at_exit)
        self._run = run
        self.rules = rules
        self.rules6 = rules6  # ip6tables, for IPv6 sources (None: IPv4 only, as fwknopd)
        self.supports_ipv6 = rules6 is not None
        self.nat = nat  # the NAT chains (iptnat.py), when forwarding or local NAT is on
        self.supports_nat = nat is not None
        self._specs: dict[OpeningKey, list[str]] = {}  # how to delete each open rule

    def start(self, now: float) -> None:
        """fwknopd's start-up: flush (if configured), create the chain and the jump, adopt."""
        if self.flush_at_init:
            self.flush()
        for rules in self._families():
            self._make_chain(rules)
        if self.nat is not None:
            self.nat.start()
        if not self.flush_at_init:
            self.rescan(now)
            log.info("iptables: %d grant(s) still open from before", len(self.open))

    def _families(self) -> list[IptablesRules]:
        return [self.rules] if self.rules6 is None else [self.rules, self.rules6]

    def _rules_for(self, opening: Opening) -> IptablesRules:
        if opening.source.version == 6:
            if self.rules6 is None:
                raise FirewallError(f"cannot open for {opening.source}: ip6tables is not in use")
            return self.rules6
        return self.rules

    def rescan(self, now: float) -> int:
        """Read our chain(s): delete every ``_exp_`` rule that is due, adopt the rest."""
        removed = 0
        for rules in self._families():
            status, out, _err = self._run(rules.list_chain())
            if status != 0:
                if rules is self.rules:
                    return 0  # no chain of ours (yet): nothing to scan, NAT's neither
                continue
            for line in out.splitlines():
                parsed = parse_rule(line)
                if parsed is None:
                    continue
                key, expires, spec = parsed
                if expires <= now:
                    if self._ok(rules.delete(spec)):
                        removed += 1
                        log.info(
                            "Removed rule from %s with expire time of %d",
                            rules.spec.to_chain,
                            expires,
                        )
                    self.open.pop(key, None)
                    self._specs.pop(key, None)
                elif key not in self.open or self.open[key].expires < expires:
                    self.open[key] = Opening(key[0], key[1], key[2], expires)
                    self._specs[key] = spec
        if self.nat is not None:
            removed += self.nat.rescan(now)
        return removed

    def housekeeping(self, now: float) -> None:
        """fwknopd's deep scan (RULES_CHECK_THRESHOLD): expired ``_exp_`` rules go, anyone's."""
        self.rescan(now)

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        for opening, current in wanted:
            rules = self._rules_for(opening)
            self._must(rules.add(opening))
            log.info(
                "Added access rule to %s for %s -> %s %s/%d, expires at %d",
                rules.spec.to_chain, opening.source, opening.destination or anywhere(opening),
                opening.proto, opening.port, opening.expires,
            )  # fmt: skip
            if current is not None:
                self._delete(current)
            self._specs[opening.key] = rules.rule_spec(opening)

    def _apply_nat(self, opening: NatOpening, current: NatOpening | None, now: int) -> None:
        assert self.nat is not None  # noqa: S101 - Firewall.grant checks supports_nat
        self.nat.add(opening, current)

    def _close_nat(self, opening: NatOpening) -> None:
        if self.nat is not None:
            self.nat.remove(opening)

    def _delete(self, opening: Opening) -> None:
        rules = self._rules_for(opening)
        spec = self._specs.pop(opening.key, None) or rules.rule_spec(opening)
        if not self._ok(rules.delete(spec)):
            log.warning(
                "rule for %s %s/%d was already gone", opening.source, opening.proto, opening.port
            )

    def _close(self, due: Iterable[Opening]) -> None:
        for opening in due:
            self._delete(opening)
            log.info(
                "Removed rule from %s for %s %s/%d with expire time of %d",
                self.rules.spec.to_chain,
                opening.source,
                opening.proto,
                opening.port,
                opening.expires,
            )

    def flush(self) -> None:
        """Remove the jump(s), flush and delete our chain (in ip6tables too)."""
        for rules in self._families():
            self._remove_chain(rules)
        if self.nat is not None:
            self.nat.flush()
        self.open.clear()
        self._specs.clear()
        self.nat_open.clear()

    def listing(self) -> str:
        """fwknopd's ``--fw-list``: each of our chains as ``-L --line-numbers -n`` shows it.

        The input chain, then the NAT chains (fwknopd's order), then ours in
        ip6tables (fwknopd has none); a blank line between two, as fwknopd.
        """
        chains = [self.rules, *(self.nat.listed_chains() if self.nat is not None else [])]
        text = f"Listing rules in fwknopd {self.name} chains...\n\n"
        text += "\n".join(self._show(rules) for rules in chains)
        if self.rules6 is not None:
            text += f"\nListing rules in fwknopd {self.name} IPv6 chains...\n\n"
            text += self._show(self.rules6)
        return text.rstrip("\n")

    def _show(self, rules: IptablesRules) -> str:
        """One chain's listing (what went wrong, if it cannot be listed)."""
        status, out, err = self._run(rules.show_chain())
        if status != 0:
            return f"# {rules.spec.to_chain}: {err.strip() or f'exit {status}'}\n"
        return out if out.endswith("\n") else out + "\n"


def ip6tables_beside(exe: str, run: CommandRunner) -> str | None:
    """The ip6tables next to FIREWALL_EXE, if it answers (``ENABLE_IP6TABLES Y``)."""
    head, sep, name = exe.rpartition("/")
    if "iptables" not in name:
        return None
    exe6 = f"{head}{sep}{name.replace('iptables', 'ip6tables', 1)}"
    try:
        status, _out, err = run([exe6, "-w", "-t", "filter", "-S", "INPUT"])
    except FirewallError as exc:
        log.info("iptables: no IPv6 (%s)", exc)
        return None
    if status != 0:
        log.info("iptables: no IPv6 (%s: %s)", exe6, err.strip() or f"exit {status}")
        return None
    return exe6
