"""firewalld: fwknopd's iptables rules, each passed through firewalld's direct interface.

As in fwknopd's firewalld build (server-config.md §4.5), every command of the
iptables backend becomes ``firewall-cmd --direct --passthrough ipv4 <the same
arguments>``, with ``FIREWD_INPUT_ACCESS`` for the chain (``FWKNOP_INPUT``,
jumped to from INPUT) and ``FLUSH_FIREWD_AT_INIT``/``_AT_EXIT``; the
OUTPUT chain with ``ENABLE_FIREWD_OUTPUT`` (``FIREWD_OUTPUT_ACCESS``), and
NAT with ``ENABLE_FIREWD_FORWARDING``, ``ENABLE_FIREWD_LOCAL_NAT`` and
``ENABLE_FIREWD_SNAT`` (``SNAT_TRANSLATE_IP``; the ``FIREWD_FORWARD_ACCESS``,
``FIREWD_DNAT_ACCESS``, ``FIREWD_SNAT_ACCESS`` and ``FIREWD_MASQUERADE_ACCESS``
chains). So the rule building, the ``_exp_`` comments, NAT, expiry by timer
and adoption after a restart are the iptables backend's own, reused here
with another command prefix. fwknopd leaves out iptables' ``-w`` here: firewalld adds it itself.
Each command is one run of firewall-cmd (a Python program asking firewalld
over D-Bus), about half a second: a grant is in place that much later than
with iptables, and the flush at exit takes a few seconds.

A passthrough goes to iptables whatever firewalld's backend. With firewalld's
nftables backend (the default of firewalld 1.x) firewalld's own reject sits
in a table of its own, and an ACCEPT in iptables' table does not end the
packet's way through that one: a grant then opens nothing. fwknopd has the
same limit. At start-up we look at INPUT through the passthrough; when
firewalld's ``INPUT_direct`` jump is missing there (firewalld is not on its
iptables backend), we say so in a warning that names the fix
(``FirewallBackend=iptables`` in firewalld.conf, or ``FIREWALL_TYPE
nftables``).
"""

from __future__ import annotations

import logging

from ..config import ServerConfig
from .iptables import Iptables
from .iptnat import IptablesNat, iptables_nat
from .iptrules import IptablesRules
from .nfqrules import NfqSettings
from .runner import CommandRunner, Tools

__all__ = ["PASSTHROUGH", "Firewalld", "FirewalldRules"]

log = logging.getLogger("fwknop_server.firewall")

PASSTHROUGH = ("--direct", "--passthrough", "ipv4")


class FirewalldRules(IptablesRules):
    """The iptables argv builders with ``firewall-cmd --direct --passthrough ipv4`` in front."""

    def _cmd(self, *args: str) -> list[str]:
        return [self.exe, *PASSTHROUGH, "-t", self.spec.table, *args]

    def list_all(self) -> list[str]:
        """``-S`` of every chain of the filter table, through the passthrough."""
        return [self.exe, *PASSTHROUGH, "-S"]

    def list_from_chain(self) -> list[str]:
        """``-S`` of the built-in chain that jumps to ours (INPUT)."""
        return self._cmd("-S", self.spec.from_chain)


class Firewalld(Iptables):
    """The firewalld backend (``FIREWALL_TYPE firewalld``): direct rules as fwknopd makes them."""

    name = "firewalld"
    default_exe = "/usr/bin/firewall-cmd"

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Firewalld:
        """``FIREWD_INPUT_ACCESS``, ``FLUSH_FIREWD_*``, ``ENABLE_RULE_PREPEND``, OUTPUT, NAT."""
        exe, prepend = config.firewall_exe(cls.default_exe), config.flag("ENABLE_RULE_PREPEND")
        rules = FirewalldRules(exe, config.chain("FIREWD_INPUT_ACCESS"), prepend=prepend)
        output = None
        if config.flag("ENABLE_FIREWD_OUTPUT"):
            output = FirewalldRules(exe, config.chain("FIREWD_OUTPUT_ACCESS"), prepend=prepend)
        return cls(
            tools.run,
            rules,
            flush_at_init=config.flag("FLUSH_FIREWD_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_FIREWD_AT_EXIT"),
            nat=iptables_nat(config, tools.run, rules, "FIREWD"),
            output=output,
            nfq=NfqSettings.from_config(config),
        )

    def __init__(
        self,
        run: CommandRunner,
        rules: FirewalldRules,
        *,
        flush_at_init: bool = True,
        flush_at_exit: bool = True,
        nat: IptablesNat | None = None,
        output: FirewalldRules | None = None,
        nfq: NfqSettings | None = None,
    ) -> None:
        super().__init__(
            run, rules, flush_at_init=flush_at_init, flush_at_exit=flush_at_exit, nat=nat,
            output=output, nfq=nfq,
        )  # fmt: skip
        self.rules: FirewalldRules = rules

    def start(self, now: float) -> None:
        """The iptables start-up through the passthrough, then a check of firewalld's backend."""
        super().start(now)
        status, out, _err = self._run(self.rules.list_from_chain())
        direct = f"-j {self.rules.spec.from_chain}_direct"
        if status == 0 and direct not in out:
            log.warning(
                "firewalld: %s has no %s jump, so firewalld is not on its iptables backend and "
                "its own rules can reject what a grant accepts; set FirewallBackend=iptables in "
                "firewalld.conf, or use FIREWALL_TYPE nftables",
                self.rules.spec.from_chain,
                direct[3:],
            )

    def _show(self, rules: IptablesRules) -> str:
        """One chain's listing, without firewall-cmd's closing ``success``."""
        lines = super()._show(rules).rstrip("\n").splitlines()
        while lines and lines[-1].strip() in ("", "success"):
            lines.pop()
        return "\n".join(lines) + "\n"
