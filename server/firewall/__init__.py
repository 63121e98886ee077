"""Firewall backends: found by name (``FIREWALL_TYPE``), else detected in a fixed order.

``BACKENDS`` maps each name to its class; a backend makes itself from
fwknopd.conf (``from_config``: it reads its own keys) and says whether it
fits this host (``probe``). Detection tries ``DETECT`` in order: nftables
when the host's input policy lives in a native nftables chain, iptables
when it lives in iptables (legacy, or iptables-nft, whose tables must not
receive native nft objects). firewalld, pf, ipfw and ``log`` are chosen by
name only; ``FIREWALL_EXE`` defaults to each one's own tool. A new backend
is a module with its class, and a line here.
"""

from __future__ import annotations

import logging

from ..config import ServerConfig
from .base import Firewall, FirewallError, Opening
from .firewalld import Firewalld
from .ipfw import Ipfw
from .iptables import Iptables
from .logonly import LogOnly
from .nftables import Nftables
from .pf import Pf
from .runner import CommandRunner, NftRunner, SubprocessRunner, Tools

__all__ = ["BACKENDS", "DETECT", "Firewall", "FirewallError", "Opening", "detect", "make_firewall"]

log = logging.getLogger("fwknop_server.firewall")

BACKENDS: dict[str, type[Firewall]] = {
    "nftables": Nftables,
    "iptables": Iptables,
    "firewalld": Firewalld,
    "pf": Pf,
    "ipfw": Ipfw,
    "log": LogOnly,
}
DETECT = ("nftables", "iptables")  # what auto-detection tries, in this order


def detect(config: ServerConfig, tools: Tools) -> str:
    """Which backend fits this host (the first of ``DETECT``); ``FirewallError`` if none."""
    reasons = []
    for name in DETECT:
        why = BACKENDS[name].probe(config, tools)
        if why is None:
            return name
        reasons.append(f"{name}: {why}")
    raise FirewallError("no usable firewall found (" + "; ".join(reasons) + "); set FIREWALL_TYPE")


def make_firewall(
    config: ServerConfig,
    *,
    run: CommandRunner | None = None,
    nft_run: NftRunner | None = None,
) -> Firewall:
    """The backend the configuration asks for, or the detected one (nothing is run on it yet)."""
    tools = Tools(run or SubprocessRunner(), nft_run)
    kind = (config.text("FIREWALL_TYPE") or "").lower()
    if not kind:
        kind = detect(config, tools)
        log.info("firewall: %s (detected; set FIREWALL_TYPE to choose)", kind)
    return BACKENDS[kind].from_config(config, tools)
