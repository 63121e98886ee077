"""Addresses in a packet are read as fwknopd reads them, and bad ones raise only InvalidPacket.

fwknopd 2.6.10 checks an allow IP with ``inet_aton``, which reads a part
with a leading zero as octal, and hands the text to iptables, which reads it
the same way: ``198.017.0.2`` opens 198.15.0.2 (seen with the real
binaries: tests/interop/test_hostile_addresses.py). ``SpaMessage.allow_address``
is that address. An X-Forwarded-For that is not an address is an
``InvalidPacket`` (fwknopd logs "Error parsing X-Forwarded-For header" and
opens for the packet's source, the proxy, instead; we refuse).
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fwknop_core import (
    InvalidPacket,
    MessageType,
    RejectReason,
    SpaMessage,
    UsageError,
    encode_http_request,
    extract_http_spa,
    validate_ipv4,
)

WIRE = "8" + "A" * 200


def _request(header: bytes) -> bytes:
    return encode_http_request(WIRE, host="198.18.0.1").replace(b"Accept:", header + b"\r\nAccept:")


def _message(allow: str) -> SpaMessage:
    return SpaMessage(
        random_value="1234567890123456", username="u", timestamp=1_795_268_000,
        message_type=MessageType.ACCESS, message=f"{allow},tcp/22",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("allow", "address"),
    [
        ("198.18.0.2", "198.18.0.2"),
        ("198.017.0.2", "198.15.0.2"),
        ("010.0.0.00", "8.0.0.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("2001:db8::2", "2001:db8::2"),
    ],
)
def test_the_allow_address_is_what_inet_aton_reads(allow: str, address: str) -> None:
    assert _message(allow).allow_ip == allow  # the text as sent, for logs
    assert _message(allow).allow_address == address


@given(st.lists(st.integers(0, 255), min_size=4, max_size=4), st.lists(st.booleans(), min_size=4,
       max_size=4), st.lists(st.integers(0, 2), min_size=4, max_size=4))  # fmt: skip
def test_every_valid_allow_ip_reads_as_inet_aton_reads_it(
    octets: list[int], octal: list[bool], zeros: list[int]
) -> None:
    parts = [
        "0" * z + (oct(v)[2:] if o else str(v)) if (o or z == 0) else str(v)
        for v, o, z in zip(octets, octal, zeros, strict=True)
    ]
    text = ".".join(parts)
    if len(text) > 15:
        return
    try:
        expected = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        with pytest.raises(UsageError):
            validate_ipv4(text)
        return
    assert _message(validate_ipv4(text)).allow_address == expected


@pytest.mark.parametrize(
    "header",
    [
        b"X-Forwarded-For: 999.1.1.1",
        b"X-Forwarded-For: 1.2.3",
        b"X-Forwarded-For: 198.18.0.08",
        b"X-Forwarded-For: 198.18.0.91234",
        b"X-Forwarded-For: abc",
        b"X-Forwarded-For: ",
        b"x-forwarded-for: 1.2.3.4.5",
    ],
)
def test_an_x_forwarded_for_that_is_not_an_address_raises_invalid_packet(header: bytes) -> None:
    with pytest.raises(InvalidPacket) as info:
        extract_http_spa(_request(header))
    assert info.value.reason is RejectReason.BAD_FORWARDED_FOR
    assert info.value.reason.fwknop_text == "Error parsing X-Forwarded-For header"
    # a server that does not read X-Forwarded-For never looks at it
    found = extract_http_spa(_request(header), forwarded_for=False)
    assert found is not None
    assert found.forwarded_for is None


@pytest.mark.parametrize(
    ("header", "address"),
    [
        (b"X-Forwarded-For: 203.0.113.9", "203.0.113.9"),
        (b"X-Forwarded-For: 198.017.0.2", "198.15.0.2"),  # as fwknopd and iptables read it
        (b"x-forwarded-for:203.0.113.9 ", "203.0.113.9"),
        (b"X-Forwarded-For: 203.0.113.9, 198.51.100.7", "203.0.113.9"),  # the client, first
    ],
)
def test_x_forwarded_for_gives_the_address_it_names(header: bytes, address: str) -> None:
    found = extract_http_spa(_request(header))
    assert found is not None
    assert found.forwarded_for == address


@given(st.binary(max_size=600), st.booleans())
def test_extraction_raises_only_invalid_packet(tail: bytes, xff: bool) -> None:
    payload = b"GET /" + WIRE.encode() + b" HTTP/1.0\r\nUser-Agent: Fwknop\r\n" + tail
    for data in (
        payload,
        payload.replace(b"\r\nUser", b"\r\nX-Forwarded-For: " + tail[:20] + b"\r\nUser"),
    ):
        try:
            extract_http_spa(data, forwarded_for=xff)
        except InvalidPacket as exc:
            assert exc.reason is RejectReason.BAD_FORWARDED_FOR
