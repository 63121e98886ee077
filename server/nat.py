"""NAT and forwarding: what a NAT request, or FORCE_NAT, opens (server-config.md §3.6, §4.2).

Pure: the stanza's NAT settings, fwknopd.conf's, and ``plan``, which turns an
accepted request into a ``NatGrant`` (the forwarded or local access, the
DNAT, the SNAT or MASQUERADE) that every backend makes in its own way.
What NAT asks of the host (a NAT host name resolved, ``ENABLE_NAT_DNS``;
whether it forwards at all) is ``nathost.py``'s, an edge of the daemon.

What a request gets is what the real fwknopd 2.6.10 makes (checked against
it in a namespace, argv by argv):

* Only the first proto/port of the access string counts. Its port is what
  the client connects to on the server (``--nat-port``/``--nat-rand-port``
  put theirs here); the NAT field (or ``FORCE_NAT``) names the internal host
  and port. ``FORCE_NAT`` wins over the client's NAT field, and applies to
  plain access requests too.
* Forwarded NAT (types 2/4): a forward rule for the internal port, and a
  DNAT from the access port to host:port. Local NAT (5/6): an input rule for
  the internal port instead of the forward rule. ``DISABLE_DNAT``: no DNAT.
  ``FORWARD_ALL``: everything from the client is forwarded (and DNATed
  to the host, all ports).
* SNAT when ``ENABLE_IPT_SNAT`` or the stanza forces it: to ``FORCE_SNAT``'s
  address, else (unless ``FORCE_MASQUERADE``) to ``SNAT_TRANSLATE_IP``, else
  MASQUERADE. ``FORCE_MASQUERADE`` and ``FORCE_SNAT`` need ``FORCE_NAT`` or
  ``FORWARD_ALL`` (which then means ``FORCE_NAT 0.0.0.0 0``).

IPv6 (ours; fwknopd's NAT is IPv4 only): where the firewall does NAT for
IPv6 (nftables), an IPv6 client's request is served to an IPv6 internal host
(``FORCE_NAT`` with an IPv6 address, or a host name resolved to one); NAT
never crosses IP versions (the pipeline refuses such a request), and
``SNAT_TRANSLATE_IP``, IPv4 as in fwknopd, gives an IPv6 grant MASQUERADE.

Where we differ: with that implied ``0.0.0.0``, fwknopd also makes a DNAT of
everything to 0.0.0.0, which sends all of the client's traffic to the
server itself; we make no DNAT then. And ``FORCE_SNAT``/``FORCE_MASQUERADE``
work without ``ENABLE_IPT_SNAT`` (fwknopd 2.6.10 then runs an iptables
command without a chain, which fails).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from fwknop_core import MessageType, NatAccess

from .config import ServerConfig
from .vocab import NatError, NatGrant, Snat

__all__ = [
    "NatPolicy",
    "NatSettings",
    "for_client",
    "nat_settings",
    "parse_force_nat",
    "plan",
]

_ANY = ipaddress.IPv4Address(0)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class NatPolicy:
    """A stanza's NAT settings (``FORCE_NAT`` and friends)."""

    force_nat: tuple[IPAddress, int] | None = None  # IPv6: for IPv6 clients (nftables)
    force_snat: IPAddress | None = None
    force_masquerade: bool = False
    disable_dnat: bool = False
    forward_all: bool = False

    @property
    def forces_snat(self) -> bool:
        """Whether the stanza asks for SNAT or MASQUERADE itself."""
        return self.force_snat is not None or self.force_masquerade


@dataclass(frozen=True, slots=True)
class NatSettings:
    """fwknopd.conf's NAT switches, as far as the firewall can honour them."""

    forwarding: bool = False  # ENABLE_IPT_FORWARDING: types 2 and 4
    local: bool = False  # ENABLE_IPT_LOCAL_NAT: types 5 and 6
    snat: bool = False  # ENABLE_IPT_SNAT
    translate_ip: ipaddress.IPv4Address | None = None  # SNAT_TRANSLATE_IP
    dns: bool = True  # ENABLE_NAT_DNS

    @property
    def enabled(self) -> bool:
        """Whether any NAT is on (the forward and DNAT chains exist)."""
        return self.forwarding or self.local

    def allows(self, message_type: MessageType) -> bool:
        """Whether a message of this type may ask for NAT here."""
        if message_type.is_local_nat:
            return self.local
        return self.forwarding


def nat_settings(config: ServerConfig) -> NatSettings:
    """The NAT switches of an fwknopd.conf (validated at load).

    As in fwknopd's builds, the firewalld backend's switches are
    ``ENABLE_FIREWD_FORWARDING``, ``ENABLE_FIREWD_LOCAL_NAT`` and
    ``ENABLE_FIREWD_SNAT``; every other backend's the ``ENABLE_IPT_*`` ones.
    """
    prefix = "FIREWD" if (config.text("FIREWALL_TYPE") or "").lower() == "firewalld" else "IPT"
    translate = config.text("SNAT_TRANSLATE_IP")
    return NatSettings(
        forwarding=config.flag(f"ENABLE_{prefix}_FORWARDING"),
        local=config.flag(f"ENABLE_{prefix}_LOCAL_NAT"),
        snat=config.flag(f"ENABLE_{prefix}_SNAT"),
        translate_ip=ipaddress.IPv4Address(translate) if translate else None,
        dns=config.flag("ENABLE_NAT_DNS"),
    )


def parse_force_nat(text: str) -> tuple[IPAddress, int]:
    """``FORCE_NAT IP PORT`` (an IPv6 address: ours, for IPv6 clients); ``ValueError`` says
    what is wrong."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"FORCE_NAT {text!r} must be 'IP PORT'")
    try:
        address = ipaddress.ip_address(parts[0])
    except ValueError:
        raise ValueError(f"FORCE_NAT IP {parts[0]!r} is not an IP address") from None
    if not parts[1].isdigit() or int(parts[1]) > 65535:
        raise ValueError(f"FORCE_NAT port {parts[1]!r} is not 0..65535")
    return address, int(parts[1])


def plan(
    policy: NatPolicy | None,
    settings: NatSettings,
    message_type: MessageType,
    nat: NatAccess | None,
    first: tuple[str, int],
) -> NatGrant | None:
    """The NAT an accepted request gets (None: plain access); ``NatError`` if it cannot be had.

    ``first`` is the access string's first proto/port, ``nat`` the message's NAT
    field (types 2, 4, 5 and 6).
    """
    policy = policy or NatPolicy()
    if policy.force_nat is None and not message_type.has_nat:
        return None
    if policy.force_nat is not None:
        host, nat_port = str(policy.force_nat[0]), policy.force_nat[1]
    elif nat is not None:
        host, nat_port = nat.host, nat.port
    else:  # a NAT type always carries the field (the core checks it)
        raise NatError("NAT request without a NAT field")
    address = _literal(host)
    if address is None and not settings.dns:
        raise NatError(f"host name {host!r} in the NAT request, but ENABLE_NAT_DNS is off")
    snat = None
    if policy.forces_snat or settings.snat:
        if policy.force_snat is not None:
            snat = Snat(policy.force_snat)
        elif policy.force_masquerade and not policy.forward_all:
            snat = Snat()
        else:  # FORWARD_ALL with FORCE_MASQUERADE still takes SNAT_TRANSLATE_IP, as fwknopd
            snat = Snat(settings.translate_ip)
    implied = policy.forward_all and address == _ANY  # FORWARD_ALL's "FORCE_NAT 0.0.0.0 0"
    return NatGrant(
        local=message_type.is_local_nat,
        proto=first[0],
        port=first[1],
        host=host,
        nat_port=nat_port,
        forward_all=policy.forward_all,
        dnat=not policy.disable_dnat and not implied,
        snat=snat,
        address=address,
    )


def for_client(
    nat: NatGrant, source: IPAddress, translate_ip: ipaddress.IPv4Address | None
) -> NatGrant:
    """``nat`` for a client of ``source``'s IP version; ``NatError`` if it would cross versions.

    ``SNAT_TRANSLATE_IP`` (``translate_ip``, IPv4) becomes MASQUERADE for an IPv6
    client, and ``FORWARD_ALL``'s implied ``FORCE_NAT 0.0.0.0 0`` its IPv6 twin.
    """
    version = source.version
    if version == 6 and nat.forward_all and nat.address == _ANY and not nat.dnat:
        nat = replace(nat, host="::", address=ipaddress.IPv6Address(0))
    snat = nat.snat.to if nat.snat is not None else None
    if snat is not None and snat.version != version and snat == translate_ip:
        nat = replace(nat, snat=Snat())
        snat = None
    for what, address in (("NAT host", nat.address), ("FORCE_SNAT", snat)):
        if address is not None and address.version != version:
            raise NatError(f"{what} {address} is not IPv{version} like {source}")
    return nat


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
