"""What every firewall backend does, and the bookkeeping they share.

A backend opens (source, protocol, port) for a while and closes it again.
Rule building is pure (each backend has functions that return argv lists or
nft JSON, pinned by tests); applying goes through an injected runner.

Every backend remembers what it opened and until when. A repeated knock for
something already open extends it instead of adding a duplicate rule (the
C fwknopd stacks rules with different ``_exp_`` stamps), and access is never
shortened by a later knock with a smaller timeout.
"""

from __future__ import annotations

import abc
import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..vocab import Grant, IPAddress, NatGrant
from .errors import FirewallError

if TYPE_CHECKING:
    from ..config import ServerConfig
    from .runner import Tools

__all__ = ["Firewall", "FirewallError", "NatOpening", "Opening", "OpeningKey", "listed_opening"]

log = logging.getLogger("fwknop_server.firewall")

OpeningKey = tuple[IPAddress, str, int]  # (source, proto, port)
_SUPPORTED_PROTOS = ("tcp", "udp")
_PROTO_NAMES = {"6": "tcp", "17": "udp", "tcp": "tcp", "udp": "udp"}


def listed_opening(match: re.Match[str] | None) -> tuple[OpeningKey, int] | None:
    """(source, proto, port) and expiry from a listed rule matched with the named groups
    ``src``, ``proto`` (a name or number), ``port`` and ``exp``; None if it is not one."""
    if match is None or match["proto"] not in _PROTO_NAMES:
        return None
    try:
        source = ipaddress.ip_network(match["src"], strict=False).network_address
    except ValueError:
        return None
    return (source, _PROTO_NAMES[match["proto"]], int(match["port"])), int(match["exp"])


@dataclass(frozen=True, slots=True)
class Opening:
    """One open (source, proto, port) until ``expires`` (epoch seconds)."""

    source: IPAddress
    proto: str
    port: int
    expires: int
    destination: IPAddress | None = None

    @property
    def key(self) -> OpeningKey:
        """What identifies it: the same source, protocol and port is the same opening."""
        return (self.source, self.proto, self.port)


NatKey = tuple[IPAddress, IPAddress | None, NatGrant]


@dataclass(frozen=True, slots=True)
class NatOpening:
    """One open NAT grant (all of its rules or elements) until ``expires`` (epoch seconds)."""

    source: IPAddress
    nat: NatGrant  # resolved: ``nat.address`` is set
    expires: int
    destination: IPAddress | None = None  # the packet's, with ENABLE_DESTINATION_RULE
    ports: tuple[tuple[str, int], ...] = ()  # the access string's, for the log

    @property
    def key(self) -> NatKey:
        """What identifies it: the same client, destination and NAT is the same grant."""
        return (self.source, self.destination, self.nat)


class Firewall(abc.ABC):
    """A firewall backend: start, open, expire, list, flush, stop.

    A backend is made from fwknopd.conf by its own ``from_config`` (it reads
    its own keys, each marked ``Reload.RESTART`` in ``config.KEYS``: the
    firewall is set up once, at start) and registered by name in
    ``firewall/__init__.py``; ``probe`` says whether auto-detection may
    choose it on this host.
    """

    name: str = "abstract"
    default_exe: ClassVar[str] = ""  # FIREWALL_EXE when fwknopd.conf does not set it
    supports_ipv6: bool = False
    # its calls are quick and in process (no command to fork): the daemon makes them on
    # its event loop, not on the firewall thread
    in_process: bool = False
    supports_nat: bool = False  # forwarding, DNAT and SNAT for NAT requests (IPv4)
    supports_nat_ipv6: bool = False  # the same for IPv6 clients and internal hosts

    def __init__(self, *, flush_at_init: bool, flush_at_exit: bool) -> None:
        self.flush_at_init = flush_at_init
        self.flush_at_exit = flush_at_exit
        self.open: dict[OpeningKey, Opening] = {}
        self.nat_open: dict[NatKey, NatOpening] = {}

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Firewall:
        """The backend fwknopd.conf describes, made with ``tools`` (nothing is run yet)."""

    @classmethod
    def probe(cls, config: ServerConfig, tools: Tools) -> str | None:
        """None if this host's input policy is this backend's (auto-detection), else why not."""
        return "chosen by FIREWALL_TYPE only"

    # -- lifecycle -------------------------------------------------------------

    @abc.abstractmethod
    def start(self, now: float) -> None:
        """Prepare the firewall; flush if configured, else adopt what is still open."""

    def stop(self) -> None:
        """At exit: remove everything we made if ``flush_at_exit``."""
        if self.flush_at_exit:
            self.flush()

    @abc.abstractmethod
    def flush(self) -> None:
        """Remove every rule, set and chain this backend made (``--fw-flush``)."""

    @abc.abstractmethod
    def listing(self) -> str:
        """What is open now, for ``--fw-list``."""

    def listing_all(self) -> str:
        """The whole policy this backend's tool shows, for ``--fw-list-all`` (default: ours)."""
        return self.listing()

    # -- grants --------------------------------------------------------------

    def grant(self, grant: Grant, now: float) -> list[Opening]:
        """Open what ``grant`` asks for; returns the openings made or extended."""
        if grant.nat is not None:
            return self._grant_nat(grant, now)
        if grant.source.version == 6 and not self.supports_ipv6:
            raise FirewallError(f"the {self.name} backend cannot open for IPv6 {grant.source}")
        wanted = []
        for proto, port in grant.ports:
            if proto not in _SUPPORTED_PROTOS:
                log.warning("cannot open %s/%d for %s: only tcp and udp", proto, port, grant.source)
                continue
            opening = Opening(grant.source, proto, port, grant.expires, grant.destination)
            current = self.open.get(opening.key)
            if current is not None and current.expires >= opening.expires:
                continue  # already open for at least as long
            wanted.append((opening, current))
        if wanted:
            self._apply(wanted, int(now))
            for opening, _current in wanted:
                self.open[opening.key] = opening
        return [opening for opening, _current in wanted]

    @abc.abstractmethod
    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        """Make each opening (replacing the current one for the same key, if given)."""

    def _grant_nat(self, grant: Grant, now: float) -> list[Opening]:
        """A NAT grant: made as one whole (``_apply_nat``), or extended like an opening."""
        assert grant.nat is not None  # noqa: S101 - only called for NAT grants
        if not self.supports_nat:
            raise FirewallError(f"the {self.name} backend does not do NAT")
        if grant.nat.address is None:
            raise FirewallError(f"NAT host {grant.nat.host!r} has not been resolved")
        if grant.source.version == 6 and not self.supports_nat_ipv6:
            raise FirewallError(f"the {self.name} backend does no NAT for IPv6 {grant.source}")
        opening = NatOpening(grant.source, grant.nat, grant.expires, grant.destination, grant.ports)
        current = self.nat_open.get(opening.key)
        if current is not None and current.expires >= opening.expires:
            return []  # already open for at least as long
        self._apply_nat(opening, current, int(now))
        self.nat_open[opening.key] = opening
        return [Opening(grant.source, grant.nat.proto, grant.nat.port, grant.expires)]

    def _apply_nat(self, opening: NatOpening, current: NatOpening | None, now: int) -> None:
        """Make a NAT grant (replacing ``current``, the same one, if given)."""
        raise FirewallError(f"the {self.name} backend does not do NAT")

    def _close_nat(self, opening: NatOpening) -> None:
        """Remove an expired NAT grant (nothing to do where the kernel expires it)."""
        return

    def expire(self, now: float) -> list[Opening]:
        """Close what is due; returns what was closed."""
        due = [o for o in self.open.values() if o.expires <= now]
        if due:
            self._close(due)
            for opening in due:
                self.open.pop(opening.key, None)
        for nat in [n for n in self.nat_open.values() if n.expires <= now]:
            try:
                self._close_nat(nat)
            finally:
                self.nat_open.pop(nat.key, None)
        return due

    def _close(self, due: Iterable[Opening]) -> None:
        """Remove expired openings (nothing to do where the kernel expires them)."""
        return

    def housekeeping(self, now: float) -> None:
        """Periodic care (iptables: remove ``_exp_`` rules left by others); default: none."""
        return

    def next_expiry(self) -> int | None:
        """When the next opening (or NAT grant) is due, if any."""
        times = [o.expires for o in self.open.values()]
        times += [n.expires for n in self.nat_open.values()]
        return min(times, default=None)

    def revoke_all(self) -> None:
        """Close every opening now, each on its own (used at exit without a flush)."""
        for opening in list(self.open.values()):
            try:
                self._close([opening])
            except FirewallError as exc:
                log.error(
                    "could not close %s %s/%d: %s", opening.source, opening.proto, opening.port, exc
                )
            self.open.pop(opening.key, None)
        for nat in list(self.nat_open.values()):
            try:
                self._close_nat(nat)
            except FirewallError as exc:
                log.error("could not close NAT for %s: %s", nat.source, exc)
            self.nat_open.pop(nat.key, None)
