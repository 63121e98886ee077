"""parse_knock: the recorded 1.x knocks come out of their pcaps as knocks, and nothing else does."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from fwknop_server.knock import parse_knock
from fwknop_server.knock.wire import ICMP, TCP, UDP, parse_tcp_options
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.legacy import (
    CLIENT_IP,
    SERVER_IP,
    encrypted,
    os_fingerprint,
    pcap_knocks,
    shared,
)

CASES = encrypted() + shared()
_PROTO = {"tcp": TCP, "udp": UDP, "icmp": ICMP}


@pytest.mark.parametrize("c", CASES, ids=[c["id"] for c in CASES])
def test_recorded_pcap_gives_the_recorded_knocks(c: dict[str, Any]) -> None:
    knocks = pcap_knocks(c["pcap"])
    assert [(k.proto, k.port) for k in knocks] == [(_PROTO[p], port) for p, port in c["knocks"]]
    assert [k.sport or None for k in knocks] == c["knock_source_ports"]
    start = knocks[0].time
    for knock, want in zip(knocks, c["knock_times_s"], strict=True):
        assert knock.time - start == pytest.approx(want, abs=0.002)
    assert {str(k.source) for k in knocks} == {CLIENT_IP}
    assert {str(k.destination) for k in knocks} == {SERVER_IP}
    assert all((k.syn is not None) == (k.proto == TCP) for k in knocks)


def test_the_recorded_syn_fingerprint_has_the_recorded_fields() -> None:
    want = os_fingerprint()["client_syn"]
    syn = pcap_knocks("pcap/enc-basic-root.pcap")[0].syn
    assert syn is not None
    assert (syn.version, syn.ttl, syn.df, syn.ip_length) == (4, want["ttl"], True, 60)
    assert syn.window == want["tcp_window"]
    assert syn.mss == 1460
    assert syn.wscale == 10
    assert [kind for kind, _ in syn.options] == [2, 4, 8, 1, 3]
    assert syn.quirks == {"df", "id+"}  # TSecr 0 on a SYN, TSval non-zero: no ts quirk
    assert not syn.payload


def test_retransmitted_syn_repeats_port_and_sequence_number() -> None:
    knocks = pcap_knocks("pcap/enc-drop-policy.pcap")
    a, b = knocks[18], knocks[19]
    assert (a.sport, a.port, a.seq) == (b.sport, b.port, b.seq)
    assert b.time > a.time


def _ipv4(proto: int, l4: bytes, *, frag: int = 0x4000, ttl: int = 64, ident: int = 1) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, ttl, proto, 0,
        ipaddress.IPv4Address("198.18.0.2").packed, ipaddress.IPv4Address("198.18.0.1").packed,
    )  # fmt: skip
    return header + l4


def _tcp(flags: int, options: bytes = b"", *, seq: int = 1, dport: int = 61083) -> bytes:
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", 40000, dport, seq, 0, doff << 4, flags, 64240, 0, 0) + options


@pytest.mark.parametrize(
    ("flags", "is_knock"),
    [(0x02, True), (0x12, False), (0x10, False), (0x04, False), (0x03, False), (0x0A, True)],
)
def test_only_pure_syns_are_tcp_knocks(flags: int, is_knock: bool) -> None:
    assert (parse_knock(_ipv4(TCP, _tcp(flags)), 1.0) is not None) is is_knock


def test_later_fragments_truncated_packets_and_other_icmp_are_not_knocks() -> None:
    syn = _ipv4(TCP, _tcp(0x02))
    assert parse_knock(syn, 0) is not None
    assert parse_knock(_ipv4(TCP, _tcp(0x02), frag=0x2005), 0) is None
    assert parse_knock(syn[:30], 0) is None
    assert parse_knock(_ipv4(ICMP, bytes([0, 0]) + bytes(6)), 0) is None  # echo reply
    echo = parse_knock(_ipv4(ICMP, bytes([8, 0]) + bytes(6)), 0)
    assert echo is not None
    assert (echo.proto, echo.port) == (ICMP, None)
    udp = parse_knock(_ipv4(UDP, struct.pack("!HHHH", 5000, 5502, 9, 0) + b"0"), 0)
    assert udp is not None
    assert (udp.proto, udp.port, udp.sport) == (UDP, 5502, 5000)


def test_ipv6_syn_is_a_knock_with_a_v6_fingerprint() -> None:
    tcp = _tcp(0x02, bytes([2, 4, 5, 0xA0]))
    header = struct.pack("!IHBB", 6 << 28 | 5, len(tcp), TCP, 57)
    header += (
        ipaddress.IPv6Address("2001:db8::2").packed + ipaddress.IPv6Address("2001:db8::1").packed
    )
    knock = parse_knock(header + tcp, 2.0)
    assert knock is not None
    assert knock.source == ipaddress.IPv6Address("2001:db8::2")
    assert knock.syn is not None
    assert (knock.syn.version, knock.syn.ttl, knock.syn.mss) == (6, 57, 1440)
    assert "flow" in knock.syn.quirks


@pytest.mark.parametrize(
    ("options", "want_kinds", "quirks"),
    [
        (bytes.fromhex("020405b40402080a0f1af978000000000103030a"), [2, 4, 8, 1, 3], set()),
        (bytes.fromhex("0204"), [], {"bad"}),
        (bytes.fromhex("01010000ff"), [1, 1, 0], {"opt+"}),
        (bytes.fromhex("030310"), [3], {"exws"}),
        (bytes.fromhex("080a0000000000000001"), [8], {"ts1-", "ts2+"}),
        (bytes.fromhex("1e04abcd"), [30], set()),
    ],
)
def test_tcp_options_and_their_quirks(
    options: bytes, want_kinds: list[int], quirks: set[str]
) -> None:
    parsed, got = parse_tcp_options(options)
    assert [k for k, _ in parsed] == want_kinds
    assert got == quirks


@given(st.binary(max_size=120), st.floats(allow_nan=False, allow_infinity=False))
def test_parse_knock_never_raises(data: bytes, when: float) -> None:
    parse_knock(data, when)
    parse_knock(_ipv4(TCP, _tcp(0x02) + data), when)
