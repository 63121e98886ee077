"""Knock packets made by hand (IPv4 and IPv6, checksums right) and capture files of them.

For tests that need a SYN of another system's stack (a crafted fingerprint),
a packet a filter must pass or drop, or a capture file to read with
``--pcap-file``; ``rewrite`` moves a recorded packet to other addresses
(the replayer uses it). No sockets here.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_RAW = 101  # capture files whose packets start at the IP header
# Linux's SYN options: MSS 1460, SACK permitted, timestamp, NOP, window scale 7
LINUX_OPTIONS = bytes.fromhex("020405b40402080a0f1af978000000000103030a")
# Windows' SYN options (MSS 1460, NOP, window scale 8, NOP, NOP, SACK permitted; TTL 128)
WINDOWS_OPTIONS = bytes.fromhex("020405b40103030801010402")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 4:
        return a.packed + b.packed + struct.pack("!BBH", 0, proto, length)
    return a.packed + b.packed + struct.pack("!IxxxB", length, proto)


def ip_packet(src: str, dst: str, proto: int, l4: bytes, *, ttl: int = 64, df: bool = True,
              ident: int = 4321) -> bytes:  # fmt: skip
    """``l4`` (its checksum already right) in an IPv4 or IPv6 header."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 6:
        return struct.pack("!IHBB", 6 << 28, len(l4), proto, ttl) + a.packed + b.packed + l4
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, 0x4000 if df else 0, ttl,
                       proto, 0, a.packed, b.packed)  # fmt: skip
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + l4


def _with_sum(l4: bytes, at: int, src: str, dst: str, proto: int) -> bytes:
    value = checksum(_pseudo(src, dst, proto, len(l4)) + l4)
    return l4[:at] + struct.pack("!H", value) + l4[at + 2 :]


def tcp_syn(
    src: str, dst: str, dport: int, *, sport: int = 40000, seq: int = 1, window: int = 64240,
    options: bytes = LINUX_OPTIONS, **ip: int | bool,
) -> bytes:  # fmt: skip
    """A pure SYN (options padded to 4 bytes); ``ip``: ``ttl``, ``df``, ``ident``."""
    options += b"\0" * (-len(options) % 4)
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, 0x02, window, 0, 0)
    return ip_packet(src, dst, 6, _with_sum(tcp + options, 16, src, dst, 6), **ip)  # type: ignore[arg-type]


def tcp_data(src: str, dst: str, dport: int, payload: bytes, *, sport: int = 40000) -> bytes:
    """A segment with data (PSH+ACK) on a connection, as a client sends its request."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 2, 1, 5 << 4, 0x18, 502, 0, 0) + payload
    return ip_packet(src, dst, 6, _with_sum(tcp, 16, src, dst, 6))


def udp(src: str, dst: str, dport: int, payload: bytes = b"0", *, sport: int = 40000) -> bytes:
    """A UDP datagram (a 1.x UDP knock carries the byte ``0``)."""
    datagram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return ip_packet(src, dst, 17, _with_sum(datagram, 6, src, dst, 17))


def icmp_echo(src: str, dst: str, *, ident: int = 7, seq: int = 1) -> bytes:
    """An echo request (ICMP, or ICMPv6 between IPv6 addresses)."""
    if ipaddress.ip_address(src).version == 6:
        body = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + b"ping"
        return ip_packet(src, dst, 58, _with_sum(body, 2, src, dst, 58))
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"ping"
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ip_packet(src, dst, 1, body)


def rewrite(packet: bytes, src: str, dst: str) -> bytes:
    """An IPv4 packet moved to ``src`` -> ``dst``, its IP and TCP/UDP checksums made right again."""
    ihl = (packet[0] & 0xF) * 4
    head = bytearray(packet[:ihl])
    head[12:16] = ipaddress.IPv4Address(src).packed
    head[16:20] = ipaddress.IPv4Address(dst).packed
    head[10:12] = b"\0\0"
    head[10:12] = struct.pack("!H", checksum(bytes(head)))
    proto = head[9]
    l4 = packet[ihl : struct.unpack_from("!H", packet, 2)[0]]
    if proto in (6, 17):
        at = 16 if proto == 6 else 6
        l4 = _with_sum(l4[:at] + b"\0\0" + l4[at + 2 :], at, src, dst, proto)
    return bytes(head) + l4


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]]) -> Path:
    """A pcap file of raw IP packets (link type RAW) with these times."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        for when, data in packets:
            sec = int(when)
            usec = round((when - sec) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    return path
