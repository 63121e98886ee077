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

from ..vocab import Packet
from .ring import IPV4_UDP, FastPath

__all__ = [
    "LINK_OFFSETS",
    "Verdict",
    "fast_path",
    "ip_parser",
    "network_layer",
    "parse_ip",
    "parse_ip_at",
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
_addresses: dict[bytes, IPAddress] = {}


def _address(packed: bytes) -> IPAddress:
    """The address object for ``packed`` (4 or 16 bytes); floods repeat a few, so remember them."""
    found = _addresses.get(packed)
    if found is None:
        if len(_addresses) >= _ADDRESS_CACHE:
            _addresses.clear()  # many sources (spoofed): start over rather than grow
        found = _addresses[packed] = ipaddress.ip_address(packed)
    return found


def parse_ip(data: bytes) -> Packet | None:
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
    return Packet(payload, _address(src), _address(dst), proto, sport, dport)


Verdict = Callable[[bytes, IPAddress], object]


def ip_parser(
    verdict: Verdict | None = None, counted: dict[int, int] | None = None
) -> Callable[[bytes | mmap.mmap, int, int], Packet | None]:
    """``parse_ip_at``, optionally counting instead of returning the packets already decided.

    With ``verdict`` (the processor's ``screen``) and ``counted`` (verdict
    ``id`` -> count), a packet whose verdict is a key of ``counted`` is
    counted there and not returned: under a flood the daemon puts there the
    refusals that are past their log rate, and their packets then cost no
    ``Packet`` and no trip through the daemon's loop.
    """
    addresses, address, new, unpack = _addresses, _address, _new_tuple, IPV4_UDP.unpack_from
    tally: dict[int, int] = counted if counted is not None else {}

    def parse_ip_at(buffer: bytes | mmap.mmap, offset: int, length: int) -> Packet | None:
        """``parse_ip`` of the ``length`` bytes at ``offset`` in ``buffer`` (the packet ring).

        IPv4 UDP without IP options, what a sniffed SPA packet nearly always
        is, is read in place with one unpack and one copy (of the payload);
        anything else is copied out and goes through ``parse_ip``.
        """
        if length >= 28:
            vihl, end, frag, proto, src, dst, sport, dport = unpack(buffer, offset)
            if vihl == 0x45 and proto == _UDP and not frag & 0x1FFF and end >= 28:
                source = addresses.get(src) or address(src)
                payload = buffer[offset + 28 : offset + (end if end < length else length)]
                if verdict is not None:
                    key = id(verdict(payload, source))  # id(None): never a key
                    count = tally.get(key)
                    if count is not None:
                        tally[key] = count + 1
                        return None
                destination = addresses.get(dst) or address(dst)
                # the tuple made directly: Packet(...) runs a Python-level __new__ per packet
                return new(Packet, (payload, source, destination, _UDP, sport, dport, None))
        return parse_ip(buffer[offset : offset + length])

    return parse_ip_at


parse_ip_at = ip_parser()


def _make_udp(payload: bytes, source: IPAddress, dst: bytes, sport: int, dport: int) -> Packet:
    destination = _addresses.get(dst) or _address(dst)
    # the tuple made directly: Packet(...) runs a Python-level __new__ per packet
    return _new_tuple(Packet, (payload, source, destination, _UDP, sport, dport, None))


def fast_path(verdict: Verdict, counted: dict[int, int]) -> FastPath[Packet]:
    """``RxRing.read``'s own IPv4 UDP path, counting what ``counted`` mutes (see ``ip_parser``)."""
    return FastPath(verdict, counted, _addresses, _address, _make_udp)
