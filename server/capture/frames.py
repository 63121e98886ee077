"""From a captured frame to the SPA payload and its addresses (spa-protocol.md §7.4).

Link layers as fwknopd handles them (Ethernet with 802.1Q/802.1ad tags, Linux
cooked v1/v2, BSD loopback/null, raw IP), IPv4 and IPv6, and the payload of
UDP, TCP and ICMP (after its 8-byte header). Bytes past the IP total length
are ignored; fragments after the first carry no L4 header and are skipped.
"""

from __future__ import annotations

import ipaddress
import mmap
import struct
from collections.abc import Callable

from ..vocab import MUTED, Packet
from .ring import IPV4_UDP, FastPath

__all__ = [
    "LINK_OFFSETS",
    "Addresses",
    "Check",
    "fast_path",
    "ip_parser",
    "network_layer",
    "parse_ip",
]

DLT_NULL = 0
DLT_EN10MB = 1
DLT_RAW = 12
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_IPV4 = 228
DLT_IPV6 = 229
DLT_LINUX_SLL2 = 276
LINKTYPE_RAW = 101
LINK_OFFSETS = {DLT_NULL: 4, DLT_LOOP: 4, DLT_RAW: 0, LINKTYPE_RAW: 0, DLT_IPV4: 0, DLT_IPV6: 0,
                DLT_LINUX_SLL: 16, DLT_LINUX_SLL2: 20}  # fmt: skip
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_IP_TYPES = (0x0800, 0x86DD)
_TCP, _UDP, _ICMP, _ICMP6 = 6, 17, 1, 58


def network_layer(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside ``frame``, or None for anything that is not IP."""
    if linktype == DLT_EN10MB:
        offset = 12
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        while ethertype in _VLAN_TAGS:
            offset += 4
            ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        return frame[offset + 2 :] if ethertype in _IP_TYPES else None
    start = LINK_OFFSETS.get(linktype)
    return None if start is None else frame[start:]


_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_PORTS = struct.Struct("!HH")
_new_tuple = tuple.__new__
_ADDRESS_CACHE = 4096
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Check = Callable[[bytes, IPAddress], object]  # the flood screen's (screen.py)
Parse = Callable[[bytes | mmap.mmap, int, int], Packet | None]


class Addresses:
    """The address object for each packed address a capture source sees, made once each.

    A flood repeats a few sources, and making an ``ipaddress`` object costs
    more than the rest of a junk packet's way; each source keeps its own.
    ``known`` is read directly on the fast paths, and written only by ``make``.
    """

    def __init__(self, limit: int = _ADDRESS_CACHE) -> None:
        self.known: dict[bytes, IPAddress] = {}
        self.limit = limit

    def make(self, packed: bytes) -> IPAddress:
        """The address object for ``packed`` (4 or 16 bytes), remembered."""
        found = self.known.get(packed)
        if found is None:
            if len(self.known) >= self.limit:
                self.known.clear()  # many sources (spoofed): start over rather than grow
            found = self.known[packed] = ipaddress.ip_address(packed)
        return found


def parse_ip(data: bytes, addresses: Addresses | None = None) -> Packet | None:
    """The L4 payload and addresses of an IP packet; None if it carries no UDP/TCP/ICMP data."""
    if len(data) < 20:
        return None
    version = data[0] >> 4
    if version == 4:
        vihl, _tos, end, _id, frag, _ttl, proto, _sum, src, dst = _IPV4.unpack_from(data)
        start = (vihl & 0x0F) * 4
        if start < 20 or end < start or frag & 0x1FFF:
            return None  # bad header, or a non-first fragment
    elif version == 6:
        if len(data) < 40:
            return None
        proto = data[6]
        src, dst = data[8:24], data[24:40]
        start, end = 40, 40 + int.from_bytes(data[4:6], "big")
    else:
        return None
    end = min(end, len(data))  # bytes after the IP length (padding) are not payload
    if proto == _UDP and end - start >= 8:
        sport, dport = _PORTS.unpack_from(data, start)
        payload = data[start + 8 : end]
    elif proto == _TCP and end - start >= 20:
        sport, dport = _PORTS.unpack_from(data, start)
        payload = data[start + (data[start + 12] >> 4) * 4 : end]
    elif proto in (_ICMP, _ICMP6) and end - start >= 8:
        sport = dport = 0
        payload = data[start + 8 : end]
    else:
        return None
    address = ipaddress.ip_address if addresses is None else addresses.make
    return Packet(payload, address(src), address(dst), proto, sport, dport)


def ip_parser(check: Check | None = None, addresses: Addresses | None = None) -> Parse:
    """``parse_ip`` of the packet at an offset in a buffer, screened by ``check`` if given.

    With ``check`` (the flood screen's), each packet's verdict travels in
    ``Packet.screened``, and a packet the screen says is ``MUTED`` (counted
    there) is not returned: under a flood its refusal is past its log rate,
    and its packets then cost no ``Packet`` and no trip through the daemon.
    """
    cache = addresses if addresses is not None else Addresses()
    known, address, new, unpack = cache.known, cache.make, _new_tuple, IPV4_UDP.unpack_from

    def parse_ip_at(buffer: bytes | mmap.mmap, offset: int, length: int) -> Packet | None:
        """``parse_ip`` of the ``length`` bytes at ``offset`` in ``buffer`` (the packet ring).

        IPv4 UDP without IP options, what a sniffed SPA packet nearly always
        is, is read in place with one unpack and one copy (of the payload);
        anything else is copied out and goes through ``parse_ip``.
        """
        if length >= 28:
            vihl, end, frag, proto, src, dst, sport, dport = unpack(buffer, offset)
            if vihl == 0x45 and proto == _UDP and not frag & 0x1FFF and end >= 28:
                source = known.get(src) or address(src)
                payload = buffer[offset + 28 : offset + (end if end < length else length)]
                verdict = None if check is None else check(payload, source)
                if verdict is MUTED:
                    return None
                destination = known.get(dst) or address(dst)
                # the tuple made directly: Packet(...) runs a Python-level __new__ per packet
                return new(Packet, (payload, source, destination, _UDP, sport, dport, verdict))
        packet = parse_ip(buffer[offset : offset + length], cache)
        if packet is None or check is None:
            return packet
        verdict = check(packet.payload, packet.src)
        return None if verdict is MUTED else packet._replace(screened=verdict)

    return parse_ip_at


def fast_path(check: Check, addresses: Addresses) -> FastPath[Packet]:
    """``RxRing.read``'s own IPv4 UDP path, screened by ``check`` (see ``ip_parser``)."""
    known, address = addresses.known, addresses.make

    def make(  # noqa: PLR0917 - positional: called for every packet the ring keeps
        payload: bytes, source: IPAddress, dst: bytes, sport: int, dport: int, verdict: object
    ) -> Packet:
        destination = known.get(dst) or address(dst)
        # the tuple made directly: Packet(...) runs a Python-level __new__ per packet
        return _new_tuple(Packet, (payload, source, destination, _UDP, sport, dport, verdict))

    return FastPath(check, known, address, make)
