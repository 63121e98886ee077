"""What one access.conf stanza asks of knock sequences, typed and checked (legacy-knock.md §7).

The stanza reader (the daemon's config layer) turns the keywords into an
:class:`EncryptedRule` or a :class:`SharedRule`; the value parsers here are
the one place each keyword's rule lives, so that reader only maps names to
them:

==========================  ==================================================
``ENCRYPT_SEQUENCE``        flag (or ``DATA_COLLECT_MODE: ENCRYPT_SEQUENCE``)
``SHARED_SEQUENCE``         :func:`fwknop_core.parse_shared_sequence`
``KEY``                     :class:`fwknop_core.KnockKey` (no 32-byte limit)
``PORT_OFFSET``             :func:`parse_port_offset`, 1..65280, default 61000
``OPEN_PORTS``              :func:`parse_open_ports`: ``tcp/N``, ``udp/N``, ``icmp``
``PERMIT_CLIENT_PORTS``     bool: grant the decoded port outside OPEN_PORTS
``REQUIRE_USERNAME``        :func:`parse_usernames` (comma list)
``REQUIRE_SOURCE_ADDRESS``  bool: refuse allow IP 0.0.0.0
``KNOCK_ALLOW_IP``          networks the decoded allow IP may name besides the
                            knock source (new; without it the two must agree)
``REQUIRE_OS``              exact pf.os OS string or p0f label
``REQUIRE_OS_REGEX``        case-insensitive regex (:class:`OsRequirement`)
``KNOCK_INTERVAL``          :func:`parse_seconds`, default 60, first to last knock
``KNOCK_LIMIT``             :func:`parse_knock_limit`, sequences granted per source
``MIN_TIME_DIFF``           :func:`parse_seconds`, shared only, strict ``>``
``MAX_TIME_DIFF``           :func:`parse_seconds`, shared only, strict ``<``
``FW_ACCESS_TIMEOUT``       seconds; 0 (1.x's "permanent") is refused
==========================  ==================================================

A rule validates itself when built (``ValueError`` with the keyword's name),
so the collector never meets a rule it cannot run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from fwknop_core import DEFAULT_KNOCK_OFFSET, KNOCK_PROTOCOLS, MAX_KNOCK_OFFSET, KnockKey, KnockStep

from .osfp import OsRequirement

__all__ = [
    "DEFAULT_FW_ACCESS_TIMEOUT",
    "DEFAULT_KNOCK_INTERVAL",
    "EncryptedRule",
    "Network",
    "Rule",
    "SharedRule",
    "capture_filter",
    "parse_knock_limit",
    "parse_open_ports",
    "parse_port_offset",
    "parse_seconds",
    "parse_usernames",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Port = tuple[str, int]  # ("tcp", 22), ("icmp", 0)
DEFAULT_KNOCK_INTERVAL = 60.0
DEFAULT_FW_ACCESS_TIMEOUT = 30
_MAX_INTERVAL = 86400.0


def parse_port_offset(text: str) -> int:
    """``PORT_OFFSET``: 1..65280, so that offset + 255 is still a port."""
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_KNOCK_OFFSET:
        raise ValueError(f"PORT_OFFSET {text!r} is not a number in 1..{MAX_KNOCK_OFFSET}")
    return int(value)


def parse_seconds(name: str, text: str) -> float:
    """``KNOCK_INTERVAL``, ``MIN_TIME_DIFF``, ``MAX_TIME_DIFF``: seconds, fractions allowed."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number of seconds") from None
    if not 0 <= value <= _MAX_INTERVAL:
        raise ValueError(f"{name} {text!r} is outside 0..{_MAX_INTERVAL:g} seconds")
    return value


def parse_knock_limit(text: str) -> int:
    """``KNOCK_LIMIT``: how many sequences one source may have granted (0: none)."""
    value = text.strip()
    if not value.isdigit():
        raise ValueError(f"KNOCK_LIMIT {text!r} is not a whole number")
    return int(value)


def parse_open_ports(text: str) -> frozenset[Port]:
    """``OPEN_PORTS``: ``tcp/N``, ``udp/N`` and ``icmp`` (``icmp/N`` too: icmp has no port)."""
    ports: set[Port] = set()
    for item in (part.strip() for part in text.split(",")):
        proto, sep, port = (p.strip() for p in item.lower().partition("/"))
        if proto == "icmp" and (not sep or port.isdigit()):
            ports.add(("icmp", 0))
        elif proto in ("tcp", "udp") and port.isdigit() and 1 <= int(port) <= 65535:
            ports.add((proto, int(port)))
        else:
            raise ValueError(f"OPEN_PORTS entry {item!r} is not tcp/PORT, udp/PORT or icmp")
    return frozenset(ports)


def parse_usernames(text: str) -> frozenset[bytes]:
    """``REQUIRE_USERNAME``: a comma list; 1.x took the whole value as one name."""
    names = frozenset(n.strip().encode() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError("REQUIRE_USERNAME names nobody")
    return names


def _check_common(rule: EncryptedRule | SharedRule) -> None:
    if not rule.source:
        raise ValueError("SOURCE is empty")
    if not 0 < rule.knock_interval <= _MAX_INTERVAL:
        raise ValueError(f"KNOCK_INTERVAL {rule.knock_interval:g} must be above 0")
    if rule.fw_access_timeout <= 0:
        raise ValueError(
            "FW_ACCESS_TIMEOUT must be above 0 (fwknop 1.x took a missing or 0 value "
            "as 'never close')"
        )
    if rule.knock_limit is not None and rule.knock_limit < 0:
        raise ValueError("KNOCK_LIMIT must not be negative")
    for proto, port in rule.open_ports:
        if proto not in KNOCK_PROTOCOLS or not 0 <= port <= 65535:
            raise ValueError(f"OPEN_PORTS entry {proto}/{port} is not tcp/N, udp/N or icmp")


@dataclass(frozen=True, slots=True, repr=False)
class EncryptedRule:
    """An ``ENCRYPT_SEQUENCE`` stanza: the key and what a decoded request may open."""

    name: str  # stable id of the stanza (e.g. "access.conf:12"): limits and logs use it
    source: tuple[Network, ...]
    key: KnockKey
    open_ports: frozenset[Port] = frozenset()
    permit_client_ports: bool = False
    offset: int = DEFAULT_KNOCK_OFFSET
    require_usernames: frozenset[bytes] | None = None
    require_source_address: bool = False
    allow_ip: tuple[Network, ...] = ()  # KNOCK_ALLOW_IP
    require_os: OsRequirement | None = None
    knock_interval: float = DEFAULT_KNOCK_INTERVAL
    knock_limit: int | None = None
    fw_access_timeout: int = DEFAULT_FW_ACCESS_TIMEOUT
    ports: range = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _check_common(self)
        if not isinstance(self.key, KnockKey):
            raise TypeError("key must be a KnockKey")
        if not 1 <= self.offset <= MAX_KNOCK_OFFSET:
            raise ValueError(f"PORT_OFFSET {self.offset} is outside 1..{MAX_KNOCK_OFFSET}")
        if not self.open_ports and not self.permit_client_ports:
            raise ValueError("OPEN_PORTS is required (or PERMIT_CLIENT_PORTS)")
        object.__setattr__(self, "ports", range(self.offset, self.offset + 256))

    def __repr__(self) -> str:
        return f"EncryptedRule({self.name}, offset {self.offset})"

    def matches_source(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether the knock source is in SOURCE."""
        return any(address in net for net in self.source)


@dataclass(frozen=True, slots=True, repr=False)
class SharedRule:
    """A ``SHARED_SEQUENCE`` stanza: the steps, their timing, and the ports they open."""

    name: str
    source: tuple[Network, ...]
    steps: tuple[KnockStep, ...]
    open_ports: frozenset[Port]
    min_time_diff: float | None = None
    max_time_diff: float | None = None
    require_os: OsRequirement | None = None
    knock_interval: float = DEFAULT_KNOCK_INTERVAL
    knock_limit: int | None = None
    fw_access_timeout: int = DEFAULT_FW_ACCESS_TIMEOUT

    def __post_init__(self) -> None:
        _check_common(self)
        if not self.steps:
            raise ValueError("SHARED_SEQUENCE has no steps")
        if not self.open_ports:
            raise ValueError("OPEN_PORTS is required for a shared sequence")
        lo, hi = self.min_time_diff, self.max_time_diff
        if lo is not None and hi is not None and hi < lo:
            raise ValueError(f"MAX_TIME_DIFF {hi:g} is below MIN_TIME_DIFF {lo:g}")

    def __repr__(self) -> str:
        return f"SharedRule({self.name}, {', '.join(map(str, self.steps))})"

    def matches_source(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether the knock source is in SOURCE."""
        return any(address in net for net in self.source)


Rule = EncryptedRule | SharedRule


def _ranges(ports: Iterable[int]) -> list[str]:
    """Sorted ports as ``port N`` / ``portrange A-B`` terms."""
    out: list[str] = []
    run: list[int] = []
    for port in sorted(set(ports)):
        if run and port == run[-1] + 1:
            run.append(port)
            continue
        if run:
            out.append(_term(run))
        run = [port]
    if run:
        out.append(_term(run))
    return out


def _term(run: list[int]) -> str:
    return f"dst port {run[0]}" if len(run) == 1 else f"dst portrange {run[0]}-{run[-1]}"


def capture_filter(rules: Iterable[Rule]) -> str | None:
    """The pcap filter expression for the knock listener (§4.5), or None with no rules.

    Pure SYNs and UDP datagrams to the encrypted ranges and the shared steps'
    ports, and ICMP echo requests when a shared step is icmp; IPv4 and IPv6.
    The capture layer compiles it (libpcap).
    """
    tcp: set[int] = set()
    udp: set[int] = set()
    icmp = False
    for rule in rules:
        if isinstance(rule, EncryptedRule):
            tcp.update(rule.ports)
            udp.update(rule.ports)  # --rotate-proto sends the odd knocks as UDP
            continue
        for step in rule.steps:
            if step.port is None:
                icmp = True
            elif step.proto == KNOCK_PROTOCOLS["tcp"]:
                tcp.add(step.port)
            else:
                udp.add(step.port)
    terms = []
    if tcp:
        ports = " or ".join(_ranges(tcp))
        terms.append(
            f"(tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst|tcp-fin) == tcp-syn and ({ports}))"
        )
        # libpcap's tcp[] reads IPv4 only: an IPv6 SYN's flags are at 40 + 13 (no extension
        # header between: the collector's parser takes none either)
        terms.append(f"(ip6 and tcp and ip6[53] & 0x17 == 0x02 and ({ports}))")
    if udp:
        terms.append(f"(udp and ({' or '.join(_ranges(udp))}))")
    if icmp:
        terms.append("(icmp[icmptype] == icmp-echo)")
        terms.append("(icmp6 and ip6[40] == 128)")
    return " or ".join(terms) if terms else None
