"""IPv6 allow IPs: an opt-in extension, refused by default as fwknopd 2.6 refuses them."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fwknop_core import (
    InvalidPacket,
    RejectReason,
    SpaMessage,
    UsageError,
    build_packet,
    generate_keys,
    open_packet,
    validate_allow_ip,
)

KEYS = generate_keys()


def test_builders_refuse_an_ipv6_allow_ip_unless_asked() -> None:
    with pytest.raises(UsageError, match=r"fwknopd 2\.6 only takes an IPv4 allow IP"):
        SpaMessage.access_request("2001:db8::2", "tcp/22", username="u")
    with pytest.raises(UsageError, match="IPv4 allow IP"):
        SpaMessage.command_request("2001:db8::2", "uptime", username="u")
    msg = SpaMessage.access_request("2001:db8::2", "tcp/22", username="u", allow_ipv6=True)
    assert msg.allow_ip == "2001:db8::2" and msg.allow_ip_is_ipv6
    assert [str(a) for a in msg.access] == ["tcp/22"]
    assert not SpaMessage.access_request("198.51.100.7", "tcp/22", username="u").allow_ip_is_ipv6


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("fe80::1%eth0", "not an IPv6 address"),
        ("::ffff:198.51.100.7", "IPv4-mapped address: give 198.51.100.7"),
        ("2001:db8::g", "not an IPv6 address"),
        ("2001:db8:::2", "not an IPv6 address"),
        ("1:2:3:4:5:6:7:8:9", "not an IPv6 address"),
    ],
)
def test_bad_ipv6_allow_ips_are_refused(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        validate_allow_ip(text, ipv6=True)


def test_open_packet_refuses_an_ipv6_allow_ip_by_default_as_fwknopd_does() -> None:
    msg = SpaMessage.access_request("2001:db8::2", "tcp/22", username="u", allow_ipv6=True)
    wire = build_packet(msg, KEYS.rijndael, hmac_key=KEYS.hmac)
    with pytest.raises(InvalidPacket) as refused:
        open_packet(wire, KEYS.rijndael, hmac_key=KEYS.hmac)
    assert refused.value.reason is RejectReason.MALFORMED
    opened = open_packet(wire, KEYS.rijndael, hmac_key=KEYS.hmac, allow_ipv6=True)
    assert opened.message == msg


@given(st.ip_addresses(v=6))
def test_every_ipv6_address_round_trips(address: ipaddress.IPv6Address) -> None:
    if address.ipv4_mapped is not None or address.scope_id:
        return
    text = str(address)
    msg = SpaMessage.access_request(text, "tcp/22", username="u", allow_ipv6=True)
    wire = build_packet(msg, KEYS.rijndael, hmac_key=KEYS.hmac)
    opened = open_packet(wire, KEYS.rijndael, hmac_key=KEYS.hmac, allow_ipv6=True)
    assert ipaddress.IPv6Address(opened.message.allow_ip) == address
