"""Firewall backends, and choosing one (``FIREWALL_TYPE``, else detected: nftables first).

Detection picks nftables when the host's input policy lives in a native
nftables chain, and iptables when it lives in iptables (legacy, or
iptables-nft, whose tables must not receive native nft objects).
firewalld, pf and ipfw are chosen by name only: ``FIREWALL_TYPE firewalld``
(fwknopd's iptables rules through ``firewall-cmd --direct --passthrough
ipv4``), ``pf`` (an anchor) or ``ipfw`` (rule sets); ``FIREWALL_EXE``
defaults to their tool.
"""

from __future__ import annotations

import logging

from ..config import ServerConfig
from ..nat import nat_settings
from .base import Firewall, FirewallError, Opening
from .firewalld import Firewalld, FirewalldRules
from .ipfw import Ipfw, IpfwRules
from .iptables import Iptables, IptablesRules
from .iptnat import iptables_nat
from .logonly import LogOnly
from .netlink import NftNetlink
from .nftables import Nftables, find_input_chain
from .nftnat import NftNat
from .pf import Pf, PfRules
from .runner import CommandRunner, NftRunner, SubprocessRunner, nft

__all__ = ["Firewall", "FirewallError", "Opening", "detect", "make_firewall"]

log = logging.getLogger("fwknop_server.firewall")


def detect(config: ServerConfig, nft_run: NftRunner | None, run: CommandRunner) -> str:
    """Which backend fits this host: ``nftables`` or ``iptables``; ``FirewallError`` if none."""
    reasons = []
    if nft_run is not None:
        try:
            target = find_input_chain(nft_run({"nftables": [{"list": {"ruleset": None}}]}))
        except FirewallError as exc:
            reasons.append(f"nftables: {exc}")
        else:
            # iptables-nft keeps its rules in nft tables too, in upper-case chains (INPUT)
            if not target.chain.isupper():
                return "nftables"
            reasons.append(f"nftables: {target} belongs to iptables-nft")
    exe = config.required("FIREWALL_EXE")
    status, _out, err = run([exe, "-w", "-S", "INPUT"])
    if status == 0:
        return "iptables"
    reasons.append(f"iptables: {err.strip() or f'{exe} exit {status}'}")
    raise FirewallError("no usable firewall found (" + "; ".join(reasons) + "); set FIREWALL_TYPE")


def make_firewall(
    config: ServerConfig,
    *,
    run: CommandRunner | None = None,
    nft_run: NftRunner | None = None,
) -> Firewall:
    """The backend the configuration asks for, or the detected one."""
    run = run or SubprocessRunner()
    kind = (config.text("FIREWALL_TYPE") or "").lower()
    if kind == "log":
        return LogOnly(flush_at_init=False, flush_at_exit=False)
    if not kind:
        nft_run = nft_run or nft()
        kind = detect(config, nft_run, run)
        log.info("firewall: %s (detected; set FIREWALL_TYPE to choose)", kind)
    if kind == "nftables":
        netlink = None
        try:
            netlink = NftNetlink()
        except FirewallError as exc:
            log.info("%s; grants go through libnftables", exc)
        return Nftables(
            nft_run or nft(),
            netlink=netlink,
            table=config.text("NFT_TABLE"),
            chain=config.text("NFT_CHAIN"),
            flush_at_init=config.flag("FLUSH_NFT_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_NFT_AT_EXIT"),
            nat=NftNat(destination_rule=config.flag("ENABLE_DESTINATION_RULE"))
            if nat_settings(config).enabled
            else None,
        )
    if kind in ("firewalld", "pf", "ipfw"):
        return _by_name(kind, config, run)
    exe = config.required("FIREWALL_EXE")
    spec, prepend = config.chain("IPT_INPUT_ACCESS"), config.flag("ENABLE_RULE_PREPEND")
    rules = IptablesRules(exe, spec, prepend=prepend)
    exe6 = ip6tables_beside(exe, run) if config.flag("ENABLE_IP6TABLES") else None
    return Iptables(
        run,
        rules,
        flush_at_init=config.flag("FLUSH_IPT_AT_INIT"),
        flush_at_exit=config.flag("FLUSH_IPT_AT_EXIT"),
        nat=iptables_nat(config, run, rules),
        rules6=IptablesRules(exe6, spec, prepend=prepend) if exe6 else None,
    )


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


def _by_name(kind: str, config: ServerConfig, run: CommandRunner) -> Firewall:
    """The backends only ever chosen by ``FIREWALL_TYPE``: firewalld, pf, ipfw."""
    exe = config.firewall_exe(kind)
    if kind == "firewalld":
        rules = FirewalldRules(
            exe, config.chain("FIREWD_INPUT_ACCESS"), prepend=config.flag("ENABLE_RULE_PREPEND")
        )
        return Firewalld(
            run,
            rules,
            flush_at_init=config.flag("FLUSH_FIREWD_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_FIREWD_AT_EXIT"),
        )
    if kind == "pf":
        # fwknopd's pf build has no FLUSH_* settings: the anchor is emptied at start and exit
        return Pf(run, PfRules(exe, config.required("PF_ANCHOR_NAME")))
    ipfw = IpfwRules(
        exe,
        active_set=config.number("IPFW_ACTIVE_SET_NUM"),
        expire_set=config.number("IPFW_EXPIRE_SET_NUM"),
    )
    return Ipfw(
        run,
        ipfw,
        start_number=config.number("IPFW_START_RULE_NUM"),
        max_rules=config.number("IPFW_MAX_RULES"),
        check_state=config.flag("IPFW_ADD_CHECK_STATE"),
        purge_interval=config.number("IPFW_EXPIRE_PURGE_INTERVAL"),
        flush_at_init=config.flag("FLUSH_IPFW_AT_INIT"),
        flush_at_exit=config.flag("FLUSH_IPFW_AT_EXIT"),
    )
