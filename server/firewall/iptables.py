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

import ipaddress
import logging
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..config import ChainSpec
from .base import Firewall, FirewallError, NatOpening, Opening, OpeningKey
from .runner import CommandRunner, RunsCommands

if TYPE_CHECKING:
    from .iptnat import IptablesNat

__all__ = ["Iptables", "IptablesRules"]

log = logging.getLogger("fwknop_server.firewall")

_EXP = re.compile(r"_exp_(\d+)")
_MAX_JUMP_DELETES = 32


class IptablesRules:
    """Pure argv builders for one chain spec (``IPT_INPUT_ACCESS``)."""

    def __init__(self, exe: str, spec: ChainSpec, *, prepend: bool = False) -> None:
        self.exe = exe
        self.spec = spec
        self.prepend = prepend

    def _cmd(self, *args: str) -> list[str]:
        return [self.exe, "-w", "-t", self.spec.table, *args]

    def rule_spec(self, opening: Opening) -> list[str]:
        """The match and target of an access rule (fwknopd's template)."""
        dst = _anywhere(opening) if opening.destination is None else str(opening.destination)
        return [
            "-p", opening.proto,
            "-s", str(opening.source),
            "-d", dst,
            "--dport", str(opening.port),
            "-m", "comment", "--comment", f"_exp_{opening.expires}",
            "-j", self.spec.target,
        ]  # fmt: skip

    def add(self, opening: Opening) -> list[str]:
        """Append (or, with ENABLE_RULE_PREPEND, insert) an access rule."""
        verb = "-I" if self.prepend else "-A"
        return self._cmd(verb, self.spec.to_chain, *self.rule_spec(opening))

    def append(self, rule_spec: Sequence[str]) -> list[str]:
        """Append (or, with ENABLE_RULE_PREPEND, insert) a rule of any spec (NAT's)."""
        return self._cmd("-I" if self.prepend else "-A", self.spec.to_chain, *rule_spec)

    def delete(self, rule_spec: Sequence[str]) -> list[str]:
        """Delete the rule with this spec."""
        return self._cmd("-D", self.spec.to_chain, *rule_spec)

    def list_chain(self) -> list[str]:
        """``-S`` of our chain (rules as arguments)."""
        return self._cmd("-S", self.spec.to_chain)

    def new_chain(self) -> list[str]:
        """Create our chain."""
        return self._cmd("-N", self.spec.to_chain)

    def check_jump(self) -> list[str]:
        """Does the jump from the built-in chain exist?"""
        return self._cmd("-C", self.spec.from_chain, "-j", self.spec.to_chain)

    def add_jump(self) -> list[str]:
        """Insert the jump at its configured position."""
        return self._cmd(
            "-I", self.spec.from_chain, str(self.spec.jump_position), "-j", self.spec.to_chain
        )

    def delete_jump(self) -> list[str]:
        """Remove one jump rule."""
        return self._cmd("-D", self.spec.from_chain, "-j", self.spec.to_chain)

    def flush_chain(self) -> list[str]:
        """Empty our chain."""
        return self._cmd("-F", self.spec.to_chain)

    def delete_chain(self) -> list[str]:
        """Remove our (empty, unreferenced) chain."""
        return self._cmd("-X", self.spec.to_chain)


def _anywhere(opening: Opening) -> str:
    """Any destination, in the IP version of the opening's source."""
    return "::/0" if opening.source.version == 6 else "0.0.0.0/0"


def rule_spec(line: str) -> list[str] | None:
    """What follows ``-A CHAIN`` in an ``-S`` line (what ``-D CHAIN`` takes), else None."""
    try:
        args = shlex.split(line)
    except ValueError:
        return None
    if len(args) < 3 or args[0] != "-A":
        return None
    return args[2:]


def parse_rule(line: str) -> tuple[OpeningKey, int, list[str]] | None:
    """An ``-S`` line of an access rule: (source, proto, port), expiry, and its spec."""
    spec = rule_spec(line)
    if spec is None:
        return None
    values = dict(zip(spec, [*spec[1:], ""], strict=True))
    exp = _EXP.search(line)
    if exp is None or "-s" not in values or "--dport" not in values or "-p" not in values:
        return None
    try:
        source = ipaddress.ip_network(values["-s"], strict=False).network_address
        port = int(values["--dport"])
    except ValueError:
        return None
    return (source, values["-p"], port), int(exp.group(1)), spec


class ChainKeeper(RunsCommands):
    """Makes and removes a chain of ours with its jump (``Iptables``, and its NAT chains)."""

    def _make_chain(self, rules: IptablesRules) -> None:
        """Create the chain and its jump from the built-in chain, where they are missing."""
        if not self._ok(rules.list_chain()):
            self._must(rules.new_chain())
        if not self._ok(rules.check_jump()):
            self._must(rules.add_jump())

    def _remove_chain(self, rules: IptablesRules) -> None:
        """Remove the jump(s), flush and delete the chain."""
        for _ in range(_MAX_JUMP_DELETES):
            if not self._ok(rules.delete_jump()):
                break
        if self._ok(rules.flush_chain()):
            self._ok(rules.delete_chain())


class Iptables(Firewall, ChainKeeper):
    """The iptables backend (``FIREWALL_TYPE iptables``)."""

    name = "iptables"

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
                rules.spec.to_chain, opening.source, opening.destination or _anywhere(opening),
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
        """Our chain's rules (``iptables -S``, and ``ip6tables -S``)."""
        text = ""
        for rules in self._families():
            status, out, err = self._run(rules.list_chain())
            text += out if status == 0 else f"# {rules.spec.to_chain}: {err.strip()}\n"
        if self.nat is not None:
            text = f"{text.rstrip()}\n{self.nat.listing()}\n"
        return text
