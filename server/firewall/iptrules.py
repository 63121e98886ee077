"""iptables rules as fwknopd writes them: pure argv builders, and making and removing a chain.

Shared by the iptables backend (``iptables.py``), its NAT chains
(``iptnat.py``) and firewalld's passthrough (``firewalld.py``): every
command is an argv list built here (server-config.md §4).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence

from ..config import ChainSpec
from ..vocab import PROTO_NUMBERS
from .base import Opening, OpeningKey
from .runner import RunsCommands

__all__ = ["ChainKeeper", "IptablesRules", "anywhere", "parse_rule", "rule_spec"]

EXP = re.compile(r"_exp_(\d+)")
_PROTO_NAMES = {str(number): name for name, number in PROTO_NUMBERS.items()}
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
        dst = anywhere(opening) if opening.destination is None else str(opening.destination)
        return [
            "-p", opening.proto,
            "-s", str(opening.source),
            "-d", dst,
            "--dport", str(opening.port),
            "-m", "comment", "--comment", f"_exp_{opening.expires}",
            "-j", self.spec.target,
        ]  # fmt: skip

    def reply_spec(self, opening: Opening) -> list[str]:
        """The OUTPUT companion of an access rule (``ENABLE_IPT_OUTPUT``), as fwknopd 2.6.10
        makes it: the replies from the service's port to the client."""
        dst = anywhere(opening) if opening.destination is None else str(opening.destination)
        return [
            "-p", str(PROTO_NUMBERS[opening.proto]),
            "-d", str(opening.source),
            "-s", dst,
            "--sport", str(opening.port),
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

    def check(self, rule_spec: Sequence[str]) -> list[str]:
        """Does a rule with this spec exist in our chain?"""
        return self._cmd("-C", self.spec.to_chain, *rule_spec)

    def delete(self, rule_spec: Sequence[str]) -> list[str]:
        """Delete the rule with this spec."""
        return self._cmd("-D", self.spec.to_chain, *rule_spec)

    def list_chain(self) -> list[str]:
        """``-S`` of our chain (rules as arguments)."""
        return self._cmd("-S", self.spec.to_chain)

    def show_chain(self) -> list[str]:
        """Our chain as fwknopd's ``--fw-list`` shows it (``-L --line-numbers -n``)."""
        return self._cmd("-L", self.spec.to_chain, "--line-numbers", "-n")

    def list_all(self) -> list[str]:
        """``-S`` of every chain of the filter table (``--fw-list-all``)."""
        return [self.exe, "-w", "-S"]

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


def anywhere(opening: Opening) -> str:
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


def parse_rule(line: str, *, reply: bool = False) -> tuple[OpeningKey, int, list[str]] | None:
    """An ``-S`` line of an access rule: (source, proto, port), expiry, and its spec.

    ``reply``: of an OUTPUT companion (``reply_spec``), whose client is its ``-d``
    and whose port its ``--sport``.
    """
    spec = rule_spec(line)
    if spec is None:
        return None
    values = dict(zip(spec, [*spec[1:], ""], strict=True))
    exp = EXP.search(line)
    client, port_option = ("-d", "--sport") if reply else ("-s", "--dport")
    if exp is None or client not in values or port_option not in values or "-p" not in values:
        return None
    try:
        source = ipaddress.ip_network(values[client], strict=False).network_address
        port = int(values[port_option])
    except ValueError:
        return None
    proto = _PROTO_NAMES.get(values["-p"], values["-p"])
    return (source, proto, port), int(exp.group(1)), spec


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
