"""From an IP packet to a knock: the record the sequence collector and the fingerprinter read.

``parse_knock`` takes the IP layer (what a capture source hands over after
the link header, legacy-knock.md §4.5) and returns a :class:`Knock`, or None
for anything that is not a knock: a TCP segment that is not a pure SYN (SYN
without ACK, RST or FIN), a fragment after the first, an ICMP message other
than an echo request, a truncated header. It never raises for bad bytes.

A pure SYN also carries its :class:`SynFingerprint`, the neutral record that
both signature formats match (pf.os of fwknop 1.x and p0f v3, see
``osfp``). Values that change from one SYN to the next (IP ID, sequence
number, timestamp value) are reduced to the flags the formats look at (p0f's
quirks ``id+``, ``seq-``, ``ts1-`` ...), so two SYNs of one host usually give
equal fingerprints and a match can be cached.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = [
    "ICMP",
    "TCP",
    "UDP",
    "Address",
    "Knock",
    "SynFingerprint",
    "parse_knock",
    "parse_tcp_options",
    "peek_knock",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ICMP, TCP, UDP, ICMP6 = 1, 6, 17, 58
_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR = 1, 2, 4, 8, 16, 32, 64, 128
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
# TCP option kinds
EOL, NOP, MSS, WS, SOK, SACK, TS = 0, 1, 2, 3, 4, 5, 8
_FIXED_LEN = {MSS: 4, WS: 3, SOK: 2, TS: 10}


@dataclass(frozen=True, slots=True)
class SynFingerprint:
    """What passive OS fingerprinting reads from a TCP SYN (hashable: matches are cached)."""

    version: int  # 4 or 6
    ttl: int
    df: bool
    ip_length: int  # total length of the IP packet (pf.os "ss")
    ip_options: int  # bytes of IPv4 options (p0f "olen")
    window: int
    # options in wire order: (kind, value); value = MSS, window scale, 0 for a
    # timestamp whose TSval is 0 (None otherwise), padding bytes after EOL
    options: tuple[tuple[int, int | None], ...]
    quirks: frozenset[str]  # p0f v3 quirk names: df, id+, id-, ecn, 0+, flow, seq-, ...
    payload: bool = False

    @property
    def mss(self) -> int | None:
        """The MSS option's value, if the SYN has one."""
        return next((v for k, v in self.options if k == MSS), None)

    @property
    def wscale(self) -> int:
        """The window scale option's value (0 without one, as p0f counts it)."""
        return next((v or 0 for k, v in self.options if k == WS), 0)


@dataclass(frozen=True, slots=True)
class Knock:
    """One knock: who sent it, when, to which port, and (for a SYN) its fingerprint."""

    source: Address
    time: float  # capture time, seconds (any clock, as long as one clock feeds a collector)
    proto: int  # 1 icmp (echo request; ICMPv6 echo too), 6 tcp (pure SYN), 17 udp
    port: int | None  # destination port; None for icmp
    sport: int = 0
    seq: int | None = None  # TCP sequence number: a retransmitted SYN repeats it
    destination: Address | None = None
    syn: SynFingerprint | None = None


def parse_tcp_options(data: bytes) -> tuple[tuple[tuple[int, int | None], ...], set[str]]:
    """TCP options in wire order and the option quirks (``bad``, ``opt+``, ``exws``, ``ts...``)."""
    out: list[tuple[int, int | None]] = []
    quirks: set[str] = set()
    i, end = 0, len(data)
    while i < end:
        kind = data[i]
        if kind == EOL:
            rest = data[i + 1 :]
            out.append((EOL, len(rest)))
            if any(rest):
                quirks.add("opt+")
            break
        if kind == NOP:
            out.append((NOP, None))
            i += 1
            continue
        if i + 1 >= end or data[i + 1] < 2 or i + data[i + 1] > end:
            quirks.add("bad")
            break
        size = data[i + 1]
        body = data[i + 2 : i + size]
        want = _FIXED_LEN.get(kind)
        if want is not None and size != want:
            quirks.add("bad")
            break
        value: int | None = None
        if kind == MSS:
            value = int.from_bytes(body, "big")
        elif kind == WS:
            value = body[0]
            if value > 14:
                quirks.add("exws")
        elif kind == TS:
            tsval, tsecr = struct.unpack("!II", body)
            if tsval == 0:
                value = 0
                quirks.add("ts1-")
            if tsecr:
                quirks.add("ts2+")
        out.append((kind, value))
        i += size
    return tuple(out), quirks


@dataclass(frozen=True, slots=True)
class _Head:
    """The IP header fields a knock and a fingerprint need."""

    source: Address
    destination: Address
    time: float
    version: int
    ttl: int
    length: int  # IP total length
    olen: int = 0
    df: bool = False
    reserved: bool = False
    ip_id: int = 0
    ecn: int = 0
    flow: int = 0


def _ip_quirks(head: _Head, flags: int) -> set[str]:
    quirks: set[str] = set()
    if head.version == 4:
        if head.df:
            quirks.add("df")
            if head.ip_id:
                quirks.add("id+")
        elif head.ip_id == 0:
            quirks.add("id-")
        if head.reserved:
            quirks.add("0+")
    elif head.flow:
        quirks.add("flow")
    if head.ecn or flags & (_ECE | _CWR):
        quirks.add("ecn")
    return quirks


def _tcp_knock(ip: bytes, start: int, head: _Head) -> Knock | None:
    end = head.length
    if end - start < _TCP.size:
        return None
    sport, dport, seq, ack, off, flags, window, _sum, urp = _TCP.unpack_from(ip, start)
    if flags & (_SYN | _ACK | _RST | _FIN) != _SYN:
        return None
    doff = (off >> 4) * 4
    if doff < 20 or start + doff > end:
        return None
    options, quirks = parse_tcp_options(ip[start + 20 : start + doff])
    quirks |= _ip_quirks(head, flags)
    if seq == 0:
        quirks.add("seq-")
    if ack:
        quirks.add("ack+")
    if urp and not flags & _URG:
        quirks.add("uptr+")
    if flags & _URG:
        quirks.add("urgf+")
    if flags & _PSH:
        quirks.add("pushf+")
    syn = SynFingerprint(
        version=head.version,
        ttl=head.ttl,
        df=head.df,
        ip_length=head.length,
        ip_options=head.olen,
        window=window,
        options=options,
        quirks=frozenset(quirks),
        payload=start + doff < end,
    )
    return Knock(head.source, head.time, TCP, dport, sport, seq, head.destination, syn)


def _l4_knock(ip: bytes, proto: int, start: int, head: _Head) -> Knock | None:
    if proto == TCP:
        return _tcp_knock(ip, start, head)
    if head.length - start < 8:
        return None
    if proto == UDP:
        sport, dport = struct.unpack_from("!HH", ip, start)
        return Knock(head.source, head.time, UDP, dport, sport, None, head.destination)
    echo = 8 if proto == ICMP else 128
    if proto in (ICMP, ICMP6) and ip[start] == echo:
        return Knock(head.source, head.time, ICMP, None, 0, None, head.destination)
    return None


def peek_knock(ip: bytes) -> tuple[bytes, int, int | None] | None:
    """(packed source, protocol, destination port) of what may be a knock, read cheaply.

    The collector screens floods with this before :func:`parse_knock` builds
    a record; None only means "certainly not a knock".
    """
    if len(ip) < 28:
        return None
    version = ip[0] >> 4
    if version == 4:
        start, proto, source = (ip[0] & 0xF) * 4, ip[9], ip[12:16]
    elif version == 6 and len(ip) >= 48:
        start, proto, source = 40, ip[6], ip[8:24]
    else:
        return None
    if proto in (ICMP, ICMP6):
        return source, ICMP, None
    if len(ip) < start + 4:
        return None
    return source, proto, ip[start + 2] << 8 | ip[start + 3]


def parse_knock(ip: bytes, time: float) -> Knock | None:
    """The knock an IPv4 or IPv6 packet carries, or None (never raises for bad bytes)."""
    if len(ip) < 20:
        return None
    version = ip[0] >> 4
    if version == 4:
        vhl, tos, length, ip_id, frag, ttl, proto, _sum, src, dst = _IPV4.unpack_from(ip)
        ihl = (vhl & 0xF) * 4
        if ihl < 20 or length < ihl or length > len(ip) or frag & 0x1FFF:
            return None
        head = _Head(
            ipaddress.IPv4Address(src),
            ipaddress.IPv4Address(dst),
            time,
            4,
            ttl,
            length,
            olen=ihl - 20,
            df=bool(frag & 0x4000),
            reserved=bool(frag & 0x8000),
            ip_id=ip_id,
            ecn=tos & 3,
        )
        return _l4_knock(ip, proto, ihl, head)
    if version == 6 and len(ip) >= 40:
        word, payload_len, proto, hops = struct.unpack_from("!IHBB", ip)
        end = 40 + payload_len
        if end > len(ip):
            return None
        head = _Head(
            ipaddress.IPv6Address(ip[8:24]),
            ipaddress.IPv6Address(ip[24:40]),
            time,
            6,
            hops,
            end,
            ecn=(word >> 20) & 3,
            flow=word & 0xFFFFF,
        )
        return _l4_knock(ip, proto, 40, head)
    return None
