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


def resolve(grant: NatGrant, version: int = 4) -> NatGrant:
    """``grant`` with its host name resolved (blocking: DNS) to an address of the client's IP
    ``version`` (NAT does not cross families); ``NatError`` if there is none."""
    if grant.address is not None:
        return grant
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    try:
        found = socket.getaddrinfo(grant.host, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise NatError(f"cannot resolve NAT host {grant.host!r}: {exc}") from None
    if not found:
        raise NatError(f"NAT host {grant.host!r} has no IPv{version} address")
    return replace(grant, address=ipaddress.ip_address(found[0][4][0]))
