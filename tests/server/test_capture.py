"""Frames to SPA payloads, and PCAP_FILTER through libpcap, as fwknopd captures them."""

from __future__ import annotations

import ipaddress
import mmap
import socket
import struct
import time
from pathlib import Path

import pytest
from fwknop_server.capture import libpcap
from fwknop_server.capture.frames import (
    DLT_EN10MB,
    DLT_LINUX_SLL,
    Addresses,
    fast_path,
    ip_parser,
    network_layer,
    parse_ip,
)
from fwknop_server.capture.ring import RxRing
from fwknop_server.capture.sources import UdpSource, read_pcap_file
from fwknop_server.vocab import MUTED

from tests.helpers.wait import wait_for

parse_ip_at = ip_parser()

SRC, DST = "198.18.0.2", "198.18.0.1"


def _ipv4(proto: int, l4: bytes, *, frag: int = 0) -> bytes:
    total = 20 + len(l4)
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, frag, 64, proto, 0,
                    ipaddress.ip_address(SRC).packed, ipaddress.ip_address(DST).packed)
        + l4
    )  # fmt: skip


def _udp(payload: bytes, sport: int = 40000, dport: int = 62201) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(payload: bytes, dport: int = 62201) -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + payload


def _ether(ip: bytes, vlan: bool = False) -> bytes:
    tag = struct.pack("!HH", 0x8100, 7) if vlan else b""
    return b"\x02" * 6 + b"\x04" * 6 + tag + struct.pack("!H", 0x0800) + ip


def test_udp_tcp_icmp_payloads() -> None:
    udp = parse_ip(_ipv4(17, _udp(b"spa")))
    assert udp is not None
    assert (udp.payload, str(udp.src), str(udp.dst), udp.proto, udp.sport, udp.dport) == (
        b"spa", SRC, DST, 17, 40000, 62201,
    )  # fmt: skip
    tcp = parse_ip(_ipv4(6, _tcp(b"GET /x")))
    assert tcp is not None and tcp.payload == b"GET /x" and tcp.proto == 6
    icmp = parse_ip(_ipv4(1, b"\x00\x00\x00\x00\x00\x01\x00\x01" + b"spa"))
    assert icmp is not None and icmp.payload == b"spa"


def test_bytes_after_the_ip_length_and_later_fragments_are_ignored() -> None:
    packet = parse_ip(_ipv4(17, _udp(b"spa")) + b"ETHERNET-PADDING")
    assert packet is not None and packet.payload == b"spa"
    assert parse_ip(_ipv4(17, _udp(b"spa"), frag=185)) is None
    assert parse_ip(b"\x45garbage") is None


def test_ipv6() -> None:
    l4 = _udp(b"spa6")
    header = struct.pack("!IHBB16s16s", 6 << 28, len(l4), 17, 64,
                         ipaddress.ip_address("2001:db8::2").packed,
                         ipaddress.ip_address("2001:db8::1").packed)  # fmt: skip
    packet = parse_ip(header + l4)
    assert packet is not None
    assert (packet.payload, str(packet.src)) == (b"spa6", "2001:db8::2")


def test_link_layers() -> None:
    ip = _ipv4(17, _udp(b"spa"))
    assert network_layer(DLT_EN10MB, _ether(ip)) == ip
    assert network_layer(DLT_EN10MB, _ether(ip, vlan=True)) == ip
    assert network_layer(DLT_LINUX_SLL, b"\x00" * 14 + b"\x08\x00" + ip) == ip
    assert network_layer(DLT_EN10MB, b"\x00" * 12 + b"\x08\x06" + b"arp") is None
    assert network_layer(999, ip) is None


def test_libpcap_compiles_filters_and_refuses_bad_ones() -> None:
    program = libpcap.compile_filter("udp port 62201")
    assert len(program) % 8 == 0 and len(program) >= 8 * 5
    with pytest.raises(libpcap.PcapError, match="PCAP_FILTER 'udp prt 1'"):
        libpcap.compile_filter("udp prt 1")


def test_a_capture_file_is_read_and_filtered(tmp_path: Path) -> None:
    frames = [
        _ether(_ipv4(17, _udp(b"first"))),
        _ether(_ipv4(17, _udp(b"other port", dport=53))),
        _ether(_ipv4(6, _tcp(b"tcp data"))),
        _ether(_ipv4(17, _udp(b"second"))),
    ]
    path = tmp_path / "spa.pcap"
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, DLT_EN10MB))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1000 + i, 0, len(frame), len(frame)) + frame)
    udp = [p.payload for p in read_pcap_file(path, "udp port 62201")]
    assert udp == [b"first", b"second"]
    everything = [p.payload for p in read_pcap_file(path, None)]
    assert everything == [b"first", b"other port", b"tcp data", b"second"]
    with pytest.raises(libpcap.PcapError):
        list(read_pcap_file(tmp_path / "missing.pcap", None))


def test_packets_read_in_place_from_the_ring_are_the_ones_parse_ip_makes() -> None:
    plain = _ipv4(17, _udp(b"with options"))
    options = (  # IHL 6: 4 bytes of IP options before the UDP header
        b"\x46" + plain[1:2] + struct.pack("!H", len(plain) + 4) + plain[4:20] + b"\x01" * 4
        + plain[20:]
    )  # fmt: skip
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, 11, 17, 64, b"\x20" + b"\x00" * 14 + b"\x02",
                       b"\x20" + b"\x00" * 14 + b"\x01") + _udp(b"spa")  # fmt: skip
    cases = [
        _ipv4(17, _udp(b"x" * 200)),
        _ipv4(17, _udp(b"spa")) + b"ETHERNET-PADDING",
        _ipv4(17, _udp(b"spa"), frag=185),  # a later fragment
        _ipv4(17, _udp(b"spa"))[:27],  # cut inside the UDP header
        _ipv4(6, _tcp(b"GET /x")),
        _ipv4(1, b"\x00" * 8 + b"icmp"),
        options,
        ipv6,
        b"\x45garbage",
    ]
    with_options = parse_ip(options)
    assert with_options is not None and with_options.payload == b"with options"
    for frame in cases:
        buffer = b"\xee" * 37 + frame + b"\xff" * 64  # the ring: other bytes around it
        assert parse_ip_at(buffer, 37, len(frame)) == parse_ip(frame), frame


class Screen:
    """A flood screen's check: a verdict per payload; ``MUTED`` ones counted, as the real one."""

    def __init__(self, verdicts: dict[bytes, object]) -> None:
        self.verdicts = verdicts
        self.muted = 0

    def check(self, payload: bytes, _src: object) -> object:
        verdict = self.verdicts.get(payload)
        if verdict is MUTED:
            self.muted += 1
        return verdict


def test_packets_carry_their_verdict_and_muted_ones_are_left_out() -> None:
    other, passed = object(), object()
    screen = Screen({b"junk": MUTED, b"logged": other, b"valid": passed})
    parse = ip_parser(screen.check)
    for payload, kept in ((b"junk", None), (b"logged", other), (b"valid", passed), (b"junk", None)):
        for frame in (_ipv4(17, _udp(payload)), _ipv4(6, _tcp(payload))):  # fast and slow path
            packet = parse(frame, 0, len(frame))
            assert (packet is None) == (kept is None)
            assert packet is None or (packet.payload, packet.screened) == (payload, kept)
    assert screen.muted == 4


def test_each_source_keeps_its_own_address_objects() -> None:
    mine, theirs = Addresses(), Addresses()
    frame = _ipv4(17, _udp(b"spa"))
    first = ip_parser(None, mine)(frame, 0, len(frame))
    again = ip_parser(None, mine)(frame, 0, len(frame))
    other = ip_parser(None, theirs)(frame, 0, len(frame))
    assert first is not None and again is not None and other is not None
    assert first.src is again.src and first.src == other.src and first.src is not other.src
    assert set(mine.known) == {ipaddress.ip_address(SRC).packed, ipaddress.ip_address(DST).packed}


def test_the_udp_server_screens_its_packets_too() -> None:
    source = UdpSource(0)
    port = source.sock.getsockname()[1]
    passed = object()
    screen = Screen({b"junk1": MUTED, b"junk2": MUTED, b"spa": passed})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for payload in (b"junk1", b"spa", b"junk2"):
            client.sendto(payload, ("127.0.0.1", port))
        packets: list[tuple[bytes, object]] = []

        def all_read() -> bool:
            packets.extend((p.payload, p.screened) for p in source.read(screen.check))
            return len(packets) + screen.muted == 3

        wait_for(all_read, interval=0.01)  # loopback delivers at once; bounded all the same
    source.close()
    assert packets == [(b"spa", passed)] and screen.muted == 2


def _ring(
    statuses: list[int], frame_size: int = 256, frames: list[bytes] | None = None, net: int = 64
) -> RxRing:
    """An RxRing over plain memory, its frames marked as the kernel would (no socket)."""
    ring = RxRing.__new__(RxRing)
    state = {
        "frame_size": frame_size,
        "frames": len(statuses),
        "index": 0,
        "consumed": 0,
        "holes": 0,
        "_stopped_at": -1,
        "_stopped_since": 0.0,
        "clock": time.monotonic,
        "failures": [],
    }
    ring.__dict__.update(state)
    ring.map = mmap.mmap(-1, frame_size * len(statuses))
    for i, status in enumerate(statuses):
        frame = frames[i] if frames is not None else _ipv4(17, _udp(b"#%d" % i))
        # tpacket2_hdr: status, len, snaplen, mac, net; the packet at net
        struct.pack_into(
            "IIIHH", ring.map, i * frame_size, status, len(frame), len(frame), net, net
        )
        ring.map[i * frame_size + net : i * frame_size + net + len(frame)] = frame
    return ring


def test_the_ring_is_read_in_order_and_frames_are_given_back() -> None:
    ring = _ring([1, 1, 0, 1])
    assert [p.payload for p in ring.read(10, parse_ip_at, skip_outgoing=False)] == [b"#0", b"#1"]
    assert (ring.index, ring.consumed) == (2, 2)
    assert struct.unpack_from("I", ring.map, 0)[0] == 0  # handed back to the kernel
    assert ring.read(10, parse_ip_at, skip_outgoing=False) == []  # #2 is not written yet


def test_a_frame_the_kernel_skipped_is_passed_once_it_stays_empty() -> None:
    now = [100.0]
    ring = _ring([1, 0, 1, 1, 0, 0])  # frame 1: claimed by the kernel, never filled
    ring.clock = lambda: now[0]
    read = lambda: [p.payload for p in ring.read(10, parse_ip_at, skip_outgoing=False)]  # noqa: E731
    assert read() == [b"#0"]
    now[0] += 0.01
    assert read() == []  # a frame another CPU is still writing: wait for it
    now[0] += 0.05
    assert read() == [b"#2", b"#3"]  # still empty, with frames of ours after it: a hole
    assert (ring.holes, ring.index) == (1, 4)
    now[0] += 1
    assert read() == [] and read() == []  # nothing ours after frame 4: just an empty ring
    assert ring.holes == 1


def test_the_rings_own_ipv4_udp_path_makes_what_parse_ip_makes_and_leaves_out_the_muted() -> None:
    frames = [
        _ipv4(17, _udp(b"junk")),
        _ipv4(17, _udp(b"spa", sport=1234)) + b"PADDING",
        _ipv4(17, _udp(b"later fragment"), frag=185),
        _ipv4(6, _tcp(b"GET /x")),
        _ipv4(17, _udp(b"junk")),
        _ipv4(17, _udp(b"x" * 300)),
    ]
    screen = Screen({b"junk": MUTED})
    addresses = Addresses()
    ring = _ring([1] * len(frames), frame_size=512, frames=frames, net=80)
    fast = ring.read(10, ip_parser(screen.check, addresses), skip_outgoing=False,
                     fast=fast_path(screen.check, addresses))  # fmt: skip
    expected = [p for p in map(parse_ip, frames) if p is not None and p.payload != b"junk"]
    assert fast == expected and screen.muted == 2
    # the same frames where the kernel put them at another offset, and without the fast path
    ring = _ring([1] * len(frames), frame_size=512, frames=frames, net=96)
    assert ring.read(10, ip_parser(screen.check), skip_outgoing=False) == expected
    assert screen.muted == 4


def test_a_packet_that_makes_the_reader_raise_is_given_back_and_the_batch_goes_on() -> None:
    frames = [_ipv4(17, _udp(p)) for p in (b"one", b"poison", b"three")]
    bug = ValueError("a bug")

    def verdict(payload: bytes, _src: object) -> object:
        if payload == b"poison":
            raise bug
        return None

    ring = _ring([1, 1, 1], frame_size=512, frames=frames, net=80)
    fast = fast_path(verdict, Addresses())
    read = ring.read(10, parse_ip_at, skip_outgoing=False, fast=fast)
    assert [p.payload for p in read] == [b"one", b"three"]  # before: "one" was lost too
    assert ring.failures == [bug]  # for the reader to count
    assert struct.unpack_from("I", ring.map, 512)[0] == 0  # its frame went back too


def test_a_datagram_that_makes_the_udp_server_raise_is_dropped_alone() -> None:
    source = UdpSource(0)
    port = source.sock.getsockname()[1]

    def check(payload: bytes, _src: object) -> object:
        if payload == b"poison":
            raise ValueError("a bug")
        return None

    payloads: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for payload in (b"one", b"poison", b"three"):
            client.sendto(payload, ("127.0.0.1", port))

        def all_read() -> bool:
            payloads.extend(p.payload for p in source.read(check))
            return len(payloads) + len(source.failures) == 3

        wait_for(all_read, interval=0.01)
    source.close()
    assert payloads == [b"one", b"three"]
    assert [str(e) for e in source.failures] == ["a bug"]
