"""iptables NAT: fwknopd's FWKNOP_FORWARD, FWKNOP_PREROUTING, FWKNOP_POSTROUTING, FWKNOP_MASQUERADE.

The chains come from ``IPT_FORWARD_ACCESS``, ``IPT_DNAT_ACCESS``,
``IPT_SNAT_ACCESS`` and ``IPT_MASQUERADE_ACCESS`` (firewalld's ``FIREWD_*``,
its commands through the passthrough), each with its jump from the
built-in chain, as fwknopd makes them (server-config.md §4.1): the forward and
DNAT chains at start when forwarding or local NAT is on, the SNAT and
MASQUERADE chains when ``ENABLE_IPT_SNAT`` is (and when a stanza forces SNAT,
the first time it does). The rules are fwknopd 2.6.10's, argument for
argument (protocols as numbers, ``_exp_<epoch>`` comments; the templates of
§4.2, checked against the real fwknopd's commands), so the two daemons can
take over each other's chains. Local NAT puts its rule into the input chain
(``IPT_INPUT_ACCESS``).

All rules of one grant are made together and removed together when it
expires, by their specs (fwknopd lists the chains and deletes by number).
Every command is an argv list built by the pure ``nat_rules``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import ChainSpec, ServerConfig
from ..nat import nat_settings
from ..vocab import PROTO_NUMBERS
from .base import FirewallError, NatKey, NatOpening
from .iptrules import ChainKeeper, IptablesRules, rule_spec
from .runner import CommandRunner

__all__ = ["IptablesNat", "NatChains", "NatRule", "iptables_nat", "nat_rules"]

log = logging.getLogger("fwknop_server.firewall")

_ANY = "0.0.0.0/0"
_CHAIN_ORDER = ("forward", "dnat", "snat", "masquerade")  # fwknopd's (masquerade ends up first)


@dataclass(frozen=True, slots=True)
class NatChains:
    """The chain specs NAT uses, and whether the SNAT ones are made at start."""

    forward: ChainSpec
    dnat: ChainSpec
    snat: ChainSpec
    masquerade: ChainSpec
    snat_at_start: bool = False  # ENABLE_IPT_SNAT

    def spec(self, which: str) -> ChainSpec:
        """The spec of ``forward``, ``dnat``, ``snat`` or ``masquerade``."""
        spec: ChainSpec = getattr(self, which)
        return spec


@dataclass(frozen=True, slots=True)
class NatRule:
    """One rule of a NAT grant: which chain, its match and target, how fwknopd logs it."""

    chain: str  # input, forward, dnat, snat or masquerade
    spec: tuple[str, ...]
    kind: str  # FORWARD, DNAT ALL, local NAT, ... (fwknopd's log wording)
    dst: str  # the destination fwknopd's log names


def nat_rules(opening: NatOpening, chains: NatChains, input_target: str) -> list[NatRule]:
    """The rules of a NAT grant, in the order fwknopd adds them (server-config.md §4.2)."""
    nat = opening.nat
    src = str(opening.source)
    dst = _ANY if opening.destination is None else str(opening.destination)
    proto = str(PROTO_NUMBERS.get(nat.proto, nat.proto))
    comment = ("-m", "comment", "--comment", f"_exp_{opening.expires}")
    rules: list[NatRule] = []
    if nat.local:
        rules.append(NatRule(
            "input",
            ("-p", proto, "-s", src, "-d", dst, "--dport", str(nat.nat_port), *comment,
             "-j", input_target),
            "local NAT", dst,
        ))  # fmt: skip
    elif nat.forward_all:
        rules.append(NatRule(
            "forward", ("-s", src, *comment, "-j", chains.forward.target), "FORWARD ALL", _ANY
        ))  # fmt: skip
    else:
        rules.append(NatRule(
            "forward",
            ("-p", proto, "-s", src, "--dport", str(nat.nat_port), *comment,
             "-j", chains.forward.target),
            "FORWARD", _ANY,
        ))  # fmt: skip
    if nat.dnat:
        address = str(nat.target)
        if nat.forward_all:
            rules.append(NatRule(
                "dnat",
                ("-s", src, "-d", dst, *comment, "-j", chains.dnat.target,
                 "--to-destination", address),
                "DNAT ALL", dst,
            ))  # fmt: skip
        else:
            rules.append(NatRule(
                "dnat",
                ("-p", proto, "-s", src, "-d", dst, "--dport", str(nat.port), *comment,
                 "-j", chains.dnat.target, "--to-destination", f"{address}:{nat.nat_port}"),
                "DNAT", dst,
            ))  # fmt: skip
    if nat.snat is not None:
        which = "snat" if nat.snat.to is not None else "masquerade"
        target = chains.spec(which).target
        to: tuple[str, ...] = ("--to-source", str(nat.snat.to)) if nat.snat.to else ()
        if nat.forward_all:
            rules.append(NatRule(which, ("-s", src, *comment, "-j", target, *to), "SNAT ALL", _ANY))
        else:
            # fwknopd's MASQUERADE takes the access port as --to-ports
            to = to or ("--to-ports", str(nat.port))
            rules.append(NatRule(
                which,
                ("-p", proto, "-d", str(nat.target), "--dport", str(nat.nat_port), *comment,
                 "-j", target, *to),
                "SNAT", _ANY,
            ))  # fmt: skip
    return rules


class IptablesNat(ChainKeeper):
    """The NAT chains of the iptables backend: made, filled, emptied (``Iptables`` drives it).

    Its commands are made as ``input_rules`` makes them (the same tool; with
    firewalld, through its passthrough).
    """

    def __init__(
        self,
        run: CommandRunner,
        chains: NatChains,
        input_rules: IptablesRules,
        *,
        prepend: bool = False,
    ) -> None:
        self._run = run
        self.chains = chains
        make = type(input_rules)
        self.rules = {
            which: make(input_rules.exe, chains.spec(which), prepend=prepend)
            for which in _CHAIN_ORDER
        }
        self.rules["input"] = input_rules
        self._ready: set[str] = {"input"}  # chains known to exist with their jump
        self._made: dict[NatKey, list[NatRule]] = {}

    def start(self) -> None:
        """Make the forward and DNAT chains (and SNAT's, with ENABLE_IPT_SNAT), as fwknopd."""
        for which in _CHAIN_ORDER:
            if which in ("forward", "dnat") or self.chains.snat_at_start:
                self._ensure(which)

    def _ensure(self, which: str) -> None:
        if which in self._ready:
            return
        self._make_chain(self.rules[which])
        self._ready.add(which)

    def add(self, opening: NatOpening, current: NatOpening | None) -> None:
        """Make every rule of ``opening`` (then remove ``current``'s); all or none."""
        ports = ",".join(f"{proto}/{port}" for proto, port in opening.ports)  # for the log
        made: list[NatRule] = []
        try:
            for rule in nat_rules(opening, self.chains, self.rules["input"].spec.target):
                self._ensure(rule.chain)
                rules = self.rules[rule.chain]
                self._must(rules.append(rule.spec))
                made.append(rule)
                log.info(
                    "Added %s rule to %s for %s -> %s %s, expires at %d",
                    rule.kind, rules.spec.to_chain, opening.source, rule.dst,
                    "*/*" if rule.kind.endswith("ALL") else ports, opening.expires,
                )  # fmt: skip
        except FirewallError:
            self._delete(made)  # no half-made NAT
            raise
        if current is not None:
            self._delete(self._made.pop(current.key, []))
        self._made[opening.key] = made

    def remove(self, opening: NatOpening) -> None:
        """Remove the rules of ``opening`` (it expired)."""
        rules = self._made.pop(opening.key, None)
        if rules is None:
            rules = nat_rules(opening, self.chains, self.rules["input"].spec.target)
        self._delete(rules)
        for rule in rules:
            log.info(
                "Removed %s rule from %s for %s with expire time of %d",
                rule.kind, self.rules[rule.chain].spec.to_chain, opening.source, opening.expires,
            )  # fmt: skip

    def _delete(self, rules: list[NatRule]) -> None:
        for rule in rules:
            if not self._ok(self.rules[rule.chain].delete(rule.spec)):
                log.warning("%s rule for %s was already gone", rule.kind, rule.spec)

    def rescan(self, now: float) -> int:
        """Delete every due ``_exp_`` rule in the NAT chains, anyone's (fwknopd's deep scan)."""
        removed = 0
        for which in _CHAIN_ORDER:
            rules = self.rules[which]
            status, out, _err = self._run(rules.list_chain())
            if status != 0:
                continue
            for line in out.splitlines():
                spec = _due(line, now)
                if spec is not None and self._ok(rules.delete(spec)):
                    removed += 1
                    log.info("Removed expired rule from %s: %s", rules.spec.to_chain, line)
        return removed

    def flush(self) -> None:
        """Remove the jumps, flush and delete every NAT chain (fwknopd's delete_all_chains)."""
        for which in _CHAIN_ORDER:
            self._remove_chain(self.rules[which])
        self._ready = {"input"}
        self._made.clear()

    def listed_chains(self) -> list[IptablesRules]:
        """The NAT chains, in the order fwknopd's ``--fw-list`` shows them."""
        return [self.rules[which] for which in _CHAIN_ORDER]


def _due(line: str, now: float) -> list[str] | None:
    """The spec of an ``-S`` line whose ``_exp_`` stamp has passed, else None."""
    spec = rule_spec(line)
    if spec is None:
        return None
    for i, arg in enumerate(spec[:-1]):
        if arg == "--comment" and spec[i + 1].startswith("_exp_"):
            stamp = spec[i + 1][5:]
            if stamp.isdigit() and int(stamp) <= now:
                return spec
    return None


def iptables_nat(
    config: ServerConfig, run: CommandRunner, input_rules: IptablesRules, prefix: str
) -> IptablesNat | None:
    """The NAT chains fwknopd.conf asks for (None when forwarding and local NAT are off).

    ``prefix``: whose keys, ``IPT`` (``IPT_FORWARD_ACCESS``, ``ENABLE_IPT_SNAT``...)
    or firewalld's ``FIREWD``.
    """
    if not nat_settings(config).enabled:
        return None
    chains = NatChains(
        forward=config.chain(f"{prefix}_FORWARD_ACCESS"),
        dnat=config.chain(f"{prefix}_DNAT_ACCESS"),
        snat=config.chain(f"{prefix}_SNAT_ACCESS"),
        masquerade=config.chain(f"{prefix}_MASQUERADE_ACCESS"),
        snat_at_start=config.flag(f"ENABLE_{prefix}_SNAT"),
    )
    return IptablesNat(run, chains, input_rules, prepend=config.flag("ENABLE_RULE_PREPEND"))
