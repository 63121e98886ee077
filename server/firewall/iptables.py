"""iptables: fwknopd's own chains and ``_exp_<epoch>`` comments, so existing setups keep working.

Rules go into ``FWKNOP_INPUT`` (from ``IPT_INPUT_ACCESS``), jumped to from
INPUT, exactly as the C fwknopd makes them (server-config.md §4). What
differs is expiry: fwknopd lists the chain over and over to find expired
rules; we know when each rule expires and delete it then, by its spec. A
periodic scan (``RULES_CHECK_THRESHOLD`` > 0) still removes ``_exp_`` rules
that other tools, or an earlier run, left behind.

With ``ENABLE_IPT_OUTPUT`` each access rule has its reply rule in
``FWKNOP_OUTPUT`` (``IPT_OUTPUT_ACCESS``, jumped to from OUTPUT), as fwknopd
makes it (``-p 6 -d CLIENT -s DST --sport PORT``; NAT grants get none, as in
fwknopd 2.6.10). A grant is made whole or not at all: when one of its rules
cannot be added, the ones added before it are deleted again and the grant
fails (fwknopd leaves them, and forgets them until its next deep scan).

With ``ENABLE_NFQ_CAPTURE`` the SPA port is sent to NFQUEUE by fwknopd's
own chain (``NFQ_TABLE``/``NFQ_CHAIN``, see ``nfqrules.py``), made at start
and removed with the others.

IPv6 (which fwknopd 2.6 never opens for): with ``ENABLE_IP6TABLES Y``, when
``ip6tables`` sits beside ``FIREWALL_EXE`` and answers, the same chain and
jump are made there too, and a grant for an IPv6 source goes into it
(destination ``::/0``), so the iptables backend opens for IPv6 clients and
IPv6 allow IPs as nftables does.

Every command is an argv list built by the pure functions below.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable

from ..config import ServerConfig
from .base import Firewall, FirewallError, NatOpening, Opening, OpeningKey
from .iptnat import IptablesNat, iptables_nat
from .iptrules import ChainKeeper, IptablesRules, anywhere, parse_rule
from .nfqrules import NfqChains, NfqSettings
from .runner import CommandRunner, Tools

__all__ = ["Iptables", "ip6tables_beside"]

log = logging.getLogger("fwknop_server.firewall")

Made = tuple[IptablesRules, list[str]]  # a rule made: its chain, and its spec (how to delete it)


class Iptables(Firewall, ChainKeeper):
    """The iptables backend (``FIREWALL_TYPE iptables``)."""

    name = "iptables"
    default_exe = "/usr/sbin/iptables"

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Iptables:
        """``IPT_INPUT_ACCESS``, ``FLUSH_IPT_*``, ``ENABLE_RULE_PREPEND``, IPv6, OUTPUT, NAT."""
        exe = config.firewall_exe(cls.default_exe)
        prepend = config.flag("ENABLE_RULE_PREPEND")
        inputs, outputs = config.chain("IPT_INPUT_ACCESS"), config.chain("IPT_OUTPUT_ACCESS")
        output = config.flag("ENABLE_IPT_OUTPUT")
        rules = IptablesRules(exe, inputs, prepend=prepend)
        exe6 = ip6tables_beside(exe, tools.run) if config.flag("ENABLE_IP6TABLES") else None
        return cls(
            tools.run,
            rules,
            flush_at_init=config.flag("FLUSH_IPT_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_IPT_AT_EXIT"),
            nat=iptables_nat(config, tools.run, rules, "IPT"),
            rules6=IptablesRules(exe6, inputs, prepend=prepend) if exe6 else None,
            output=IptablesRules(exe, outputs, prepend=prepend) if output else None,
            output6=IptablesRules(exe6, outputs, prepend=prepend) if exe6 and output else None,
            nfq=NfqSettings.from_config(config),
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
        output: IptablesRules | None = None,
        output6: IptablesRules | None = None,
        nfq: NfqSettings | None = None,
    ) -> None:
        super().__init__(flush_at_init=flush_at_init, flush_at_exit=flush_at_exit)
        self._run = run
        self.rules = rules
        self.rules6 = rules6  # ip6tables, for IPv6 sources (None: IPv4 only, as fwknopd)
        self.output = output  # ENABLE_IPT_OUTPUT: the reply rule of each access rule
        self.output6 = output6
        self.supports_ipv6 = rules6 is not None
        self.nat = nat  # the NAT chains (iptnat.py), when forwarding or local NAT is on
        self.supports_nat = nat is not None
        self._specs: dict[OpeningKey, list[Made]] = {}  # how to delete each open rule
        # ENABLE_NFQ_CAPTURE: fwknopd's chain that sends the SPA port to the queue (and the
        # same in ip6tables when IPv6 is on: no sniffing sees IPv6 SPA packets otherwise)
        self.nfq = None if nfq is None else NfqChains.beside(run, nfq, self._tools())

    def start(self, now: float) -> None:
        """fwknopd's start-up: flush (if configured), create the chains and jumps, adopt."""
        if self.flush_at_init:
            self.flush()
        for rules in self._chains():
            self._make_chain(rules)
        if self.nat is not None:
            self.nat.start()
        if self.nfq is not None:
            self.nfq.start()
            log.info("%s: UDP port %d goes to NFQUEUE %d", self.name, self.nfq.nfq.port,
                     self.nfq.nfq.queue)  # fmt: skip
        if not self.flush_at_init:
            self.rescan(now)
            log.info("%s: %d grant(s) still open from before", self.name, len(self.open))

    def _tools(self) -> list[IptablesRules]:
        """One input chain per address family: the tool (iptables, ip6tables) of each."""
        return [self.rules] if self.rules6 is None else [self.rules, self.rules6]

    def _families(self) -> list[tuple[IptablesRules, IptablesRules | None]]:
        """Each address family's input chain, and its OUTPUT chain (ENABLE_IPT_OUTPUT)."""
        families = [(self.rules, self.output)]
        if self.rules6 is not None:
            families.append((self.rules6, self.output6))
        return families

    def _chains(self) -> list[IptablesRules]:
        """Every chain of ours but NAT's, in the order fwknopd makes them (input, output)."""
        return [rules for family in self._families() for rules in family if rules is not None]

    def _made_for(self, opening: Opening) -> list[tuple[IptablesRules, list[str], str]]:
        """The rules of one opening: (chain, spec, kind for the log): access, then OUTPUT."""
        if opening.source.version == 6:
            if self.rules6 is None:
                raise FirewallError(f"cannot open for {opening.source}: ip6tables is not in use")
            rules, output = self.rules6, self.output6
        else:
            rules, output = self.rules, self.output
        made = [(rules, rules.rule_spec(opening), "access")]
        if output is not None:
            made.append((output, output.reply_spec(opening), "OUTPUT"))
        return made

    def rescan(self, now: float) -> int:
        """Read our chains: delete every ``_exp_`` rule that is due, adopt the rest.

        A chain that cannot be listed (not made yet, or a failing ip6tables)
        is skipped: the others, and NAT's, are scanned all the same.
        """
        removed = 0
        for input_rules, output_rules in self._families():
            for rules, reply in ((input_rules, False), (output_rules, True)):
                if rules is not None:
                    removed += self._scan(rules, now, reply=reply)
        if self.nat is not None:
            removed += self.nat.rescan(now)
        return removed

    def _scan(self, rules: IptablesRules, now: float, *, reply: bool) -> int:
        status, out, _err = self._run(rules.list_chain())
        if status != 0:
            return 0
        removed = 0
        for line in out.splitlines():
            parsed = parse_rule(line, reply=reply)
            if parsed is None:
                continue
            key, expires, spec = parsed
            current = self.open.get(key)
            if expires <= now:
                if self._ok(rules.delete(spec)):
                    removed += 1
                    log.info("Removed rule from %s with expire time of %d",
                             rules.spec.to_chain, expires)  # fmt: skip
                if current is not None and current.expires <= expires:
                    self.open.pop(key, None)
                    self._specs.pop(key, None)
            elif current is None or current.expires < expires:
                self.open[key] = Opening(key[0], key[1], key[2], expires)
                self._specs[key] = [(rules, spec)]
            elif current.expires == expires:  # the other rule of the same opening
                made = self._specs.setdefault(key, [])
                if all(spec != known for _rules, known in made):
                    made.append((rules, spec))
        return removed

    def housekeeping(self, now: float) -> None:
        """fwknopd's deep scan (RULES_CHECK_THRESHOLD): expired ``_exp_`` rules go, anyone's."""
        self.rescan(now)

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        """Every rule of the grant, or none: a rule that fails takes the ones before it back."""
        made: list[Made] = []
        try:
            for opening, _current in wanted:
                for rules, spec, kind in self._made_for(opening):
                    self._must(rules.append(spec))
                    made.append((rules, spec))
                    log.info(
                        "Added %s rule to %s for %s -> %s %s/%d, expires at %d",
                        kind, rules.spec.to_chain, opening.source,
                        opening.destination or anywhere(opening), opening.proto, opening.port,
                        opening.expires,
                    )  # fmt: skip
        except FirewallError:
            self._take_back(made)
            raise
        for opening, current in wanted:  # the grant stands: what it replaces goes
            if current is not None:
                self._delete(current)
            self._specs[opening.key] = [
                (rules, spec) for rules, spec, _k in self._made_for(opening)
            ]

    def _take_back(self, made: list[Made]) -> None:
        """Delete the rules of a grant that could not be made whole."""
        for rules, spec in reversed(made):
            if not self._ok(rules.delete(spec)):
                log.error("could not take back %s rule %s", rules.spec.to_chain, shlex.join(spec))
        if made:
            log.warning("took back %d rule(s) of a grant that could not be made whole", len(made))

    def _apply_nat(self, opening: NatOpening, current: NatOpening | None, now: int) -> None:
        assert self.nat is not None  # noqa: S101 - Firewall.grant checks supports_nat
        self.nat.add(opening, current)

    def _close_nat(self, opening: NatOpening) -> None:
        if self.nat is not None:
            self.nat.remove(opening)

    def _delete(self, opening: Opening) -> None:
        made = self._specs.pop(opening.key, None)
        if made is None:
            made = [(rules, spec) for rules, spec, _kind in self._made_for(opening)]
        for rules, spec in made:
            if not self._ok(rules.delete(spec)):
                log.warning(
                    "rule for %s %s/%d was already gone from %s",
                    opening.source, opening.proto, opening.port, rules.spec.to_chain,
                )  # fmt: skip

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
        """Remove the jumps, flush and delete our chains (in ip6tables too)."""
        for rules in self._chains():
            self._remove_chain(rules)
        if self.nat is not None:
            self.nat.flush()
        if self.nfq is not None:
            self.nfq.flush()
        self.open.clear()
        self._specs.clear()
        self.nat_open.clear()

    def listing(self) -> str:
        """fwknopd's ``--fw-list``: each of our chains as ``-L --line-numbers -n`` shows it.

        The input chain, the OUTPUT chain (``ENABLE_IPT_OUTPUT``), then the NAT
        chains (fwknopd's order), then ours in ip6tables (fwknopd has none); a
        blank line between two, as fwknopd.
        """
        outputs = [self.output] if self.output is not None else []
        nat = self.nat.listed_chains() if self.nat is not None else []
        chains = [self.rules, *outputs, *nat]
        text = f"Listing rules in fwknopd {self.name} chains...\n\n"
        text += "\n".join(self._show(rules) for rules in chains)
        if self.rules6 is not None:
            text += f"\nListing rules in fwknopd {self.name} IPv6 chains...\n\n"
            chains6 = [self.rules6, *([self.output6] if self.output6 is not None else [])]
            text += "\n".join(self._show(rules) for rules in chains6)
        return text.rstrip("\n")

    def _show(self, rules: IptablesRules) -> str:
        """One chain's listing (what went wrong, if it cannot be listed)."""
        status, out, err = self._run(rules.show_chain())
        if status != 0:
            return f"# {rules.spec.to_chain}: {err.strip() or f'exit {status}'}\n"
        return out if out.endswith("\n") else out + "\n"

    def listing_all(self) -> str:
        """The whole policy of every table (``iptables -S``), for ``--fw-list-all``."""
        status, out, err = self._run(self.rules.list_all())
        return out if status == 0 else f"# {shlex.join(self.rules.list_all())}: {err.strip()}\n"


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
