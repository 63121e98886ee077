"""The rule that sends SPA packets to NFQUEUE (``ENABLE_NFQ_CAPTURE``), as each backend makes it.

fwknopd 2.6.9+ makes it with its firewall, at start, and removes it with
its chains: a chain ``NFQ_CHAIN`` (``FWKNOP_NFQ``) in table ``NFQ_TABLE``
(``mangle``), jumped to first from INPUT, holding::

    -A FWKNOP_NFQ [-i NFQ_INTERFACE] -p udp -m udp --dport NFQ_PORT -j NFQUEUE --queue-num N

So do we, with iptables (and ip6tables, when IPv6 is on) and with
firewalld (through its passthrough): ``NfqChains``. With nftables, in a
table of our own, ``inet fwknopd_nfq``, whose input chain comes before the
host's filtering (priority mangle) and queues UDP to the port, IPv4 and
IPv6; on a kernel built without nftables' queue expression (``nft_queue``;
the kernel answers ENOENT) the nftables backend makes fwknopd's chain with
``iptables`` instead, whose NFQUEUE target such kernels do have. The
capture source (``capture/nfqueue.py``) reads the queue. The rules are
pure argv lists and nft JSON; ``NfqChains`` runs them through the
backend's command runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import ChainSpec, ServerConfig
from .iptrules import ChainKeeper, IptablesRules
from .runner import CommandRunner

__all__ = ["IPTABLES", "NFQ_TABLE", "NfqChains", "NfqSettings"]

NFQ_TABLE = "fwknopd_nfq"  # nftables: the table of ours that holds the queue rule
# nftables, on a kernel without its queue expression: iptables' NFQUEUE target (both families)
IPTABLES = ("/usr/sbin/iptables", "/usr/sbin/ip6tables")
_MANGLE_PRIORITY = -150

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NfqSettings:
    """fwknopd.conf's NFQ_* keys, as the firewall uses them."""

    queue: int = 1  # NFQ_QUEUE_NUMBER
    port: int = 62201  # NFQ_PORT
    interface: str | None = None  # NFQ_INTERFACE (unset: every interface)
    table: str = "mangle"  # NFQ_TABLE
    chain: str = "FWKNOP_NFQ"  # NFQ_CHAIN

    @classmethod
    def from_config(cls, config: ServerConfig) -> NfqSettings | None:
        """The queue rule's settings, or None when ``ENABLE_NFQ_CAPTURE`` is off."""
        if not config.flag("ENABLE_NFQ_CAPTURE"):
            return None
        return cls(
            queue=config.number("NFQ_QUEUE_NUMBER"),
            port=config.number("NFQ_PORT"),
            interface=config.text("NFQ_INTERFACE") or None,
            table=config.required("NFQ_TABLE"),
            chain=config.required("NFQ_CHAIN"),
        )

    # -- iptables (and firewalld's passthrough) ------------------------------------

    @property
    def chain_spec(self) -> ChainSpec:
        """fwknopd's NFQ chain as a chain spec: jumped to first from INPUT."""
        return ChainSpec("NFQUEUE", self.table, "INPUT", 1, self.chain, 1)

    def rule_spec(self) -> list[str]:
        """The queue rule in the NFQ chain, argument for argument as fwknopd's."""
        interface = ["-i", self.interface] if self.interface else []
        return [*interface, "-p", "udp", "-m", "udp", "--dport", str(self.port),
                "-j", "NFQUEUE", "--queue-num", str(self.queue)]  # fmt: skip

    # -- nftables ----------------------------------------------------------------------

    def nft_commands(self) -> list[Json]:
        """Our table, its input chain, and the queue rule (made anew)."""
        where = {"family": "inet", "table": NFQ_TABLE}
        match: list[Json] = []
        if self.interface:
            match.append({"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                                    "right": self.interface}})  # fmt: skip
        match += [
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                       "right": self.port}},
        ]  # fmt: skip
        return [
            {"add": {"table": {"family": "inet", "name": NFQ_TABLE}}},
            {"add": {"chain": {**where, "name": "input", "type": "filter", "hook": "input",
                               "prio": _MANGLE_PRIORITY, "policy": "accept"}}},
            {"flush": {"chain": {**where, "name": "input"}}},
            {"add": {"rule": {**where, "chain": "input",
                              "expr": [*match, {"queue": {"num": self.queue}}]}}},
        ]  # fmt: skip

    @staticmethod
    def nft_delete() -> Json:
        """Remove our table (and the queue rule in it)."""
        return {"delete": {"table": {"family": "inet", "name": NFQ_TABLE}}}


class NfqChains(ChainKeeper):
    """fwknopd's NFQ chain in each of ``tools`` (iptables, ip6tables; firewalld's passthrough)."""

    def __init__(
        self, run: CommandRunner, nfq: NfqSettings, chains: Sequence[IptablesRules]
    ) -> None:
        self._run = run
        self.nfq = nfq
        self.chains = tuple(chains)

    @classmethod
    def beside(
        cls, run: CommandRunner, nfq: NfqSettings, rules: Sequence[IptablesRules]
    ) -> NfqChains:
        """The NFQ chain in the tool of each of a backend's chains (same argv builder, same exe)."""
        return cls(run, nfq, [type(r)(r.exe, nfq.chain_spec) for r in rules])

    def start(self) -> None:
        """Make the chain, its jump from INPUT and the queue rule, where they are missing."""
        for rules in self.chains:
            self._make_chain(rules)
            if not self._ok(rules.check(self.nfq.rule_spec())):
                self._must(rules.append(self.nfq.rule_spec()))

    def flush(self) -> None:
        """Remove the jump, the rule and the chain (what is not there is skipped)."""
        for rules in self.chains:
            self._remove_chain(rules)
