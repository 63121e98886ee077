"""What NAT asks of the host: a NAT host name resolved (DNS), and whether the host forwards.

The daemon's edge for ``nat.py``, which decides without I/O. ``resolve``
blocks (a DNS lookup): the daemon calls it on a worker thread, never on the
event loop.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from pathlib import Path

from .nat import NatSettings
from .vocab import NatError, NatGrant

__all__ = ["forwarding_problem", "resolve"]

_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def forwarding_problem(settings: NatSettings, firewall_does_nat: bool, firewall: str) -> str | None:
    """Why NAT requests will not work here (reads the kernel's ip_forward), or None."""
    if not settings.enabled:
        return None
    if not firewall_does_nat:
        return (
            f"ENABLE_IPT_FORWARDING/ENABLE_IPT_LOCAL_NAT: the {firewall} firewall does no NAT; "
            "NAT requests are refused"
        )
    if settings.forwarding:
        try:
            on = _IP_FORWARD.read_text().strip() != "0"
        except OSError:
            return None
        if not on:
            return (
                "ENABLE_IPT_FORWARDING: this host does not forward (net.ipv4.ip_forward is 0): "
                "forwarded NAT grants will not reach the internal hosts"
            )
    return None


def resolve(grant: NatGrant) -> NatGrant:
    """``grant`` with its host name resolved to IPv4 (blocking: DNS); ``NatError`` if not found."""
    if grant.address is not None:
        return grant
    try:
        found = socket.getaddrinfo(grant.host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise NatError(f"cannot resolve NAT host {grant.host!r}: {exc}") from None
    if not found:
        raise NatError(f"NAT host {grant.host!r} has no IPv4 address")
    return replace(grant, address=ipaddress.IPv4Address(found[0][4][0]))
