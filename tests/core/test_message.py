"""Validation rules of the plaintext message (spa-protocol.md §2)."""

from __future__ import annotations

import socket

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fwknop_core import (
    AccessSpec,
    MessageType,
    NatAccess,
    SpaMessage,
    UsageError,
    validate_access_list,
    validate_ipv4,
    validate_nat_access,
    validate_username,
)

NOW = 1_795_268_129


def _fixed_rng(n: int) -> bytes:
    return bytes(range(1, n + 1))


@pytest.mark.parametrize("ip", ["198.18.0.2", "0.0.0.0", "255.255.255.255", "010.0.0.1"])
def test_valid_ipv4(ip: str) -> None:
    assert validate_ipv4(ip) == ip


@pytest.mark.parametrize(
    "ip",
    [
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.a",
        "",
        "1.2.3.4 ",
        "1..2.3",
        "1.2.3.",
        "08.1.1.1",
        "1234.1.1.1",
        "1.2.3.4444",
    ],
)
def test_invalid_ipv4(ip: str) -> None:
    with pytest.raises(UsageError):
        validate_ipv4(ip)


@pytest.mark.parametrize("text", ["tcp/22", "udp/53", "icmp/1", "tcp/65535", "none/1"])
def test_valid_access_spec(text: str) -> None:
    assert str(AccessSpec.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "tcp/0",
        "tcp/65536",
        "none/0",
        "ftp/21",
        "tcp",
        "tcp/",
        "/22",
        "tcp/22a",
        "icmpx/1",
        "tcp/123456",
    ],
)
def test_invalid_access_spec(text: str) -> None:
    with pytest.raises(UsageError):
        AccessSpec.parse(text)


def test_access_list_tolerates_spaces_and_refuses_empty_items() -> None:
    assert [str(s) for s in validate_access_list("tcp/22, udp/53")] == ["tcp/22", "udp/53"]
    for bad in ("", "tcp/22,", ",tcp/22", "tcp/22,,udp/53"):
        with pytest.raises(UsageError):
            validate_access_list(bad)


def test_nat_access_rules() -> None:
    assert validate_nat_access("198.18.0.50,22") == NatAccess("198.18.0.50", 22)
    assert validate_nat_access("internal.example,8080").host == "internal.example"
    # an IPv6 internal host (fwknop-tui's fwknopd, for IPv6 clients); nothing else with a colon
    assert validate_nat_access("2001:db8:1::2,22") == NatAccess("2001:db8:1::2", 22)
    for bad in (
        "2001:db8::zz,22",
        "host:22,22",
        "[2001:db8::2],22",
        "198.18.0.50",
        "a,b,22",
        "198.18.0.50,0",
        "198.18.0.50,",
        "a b,22",
        "a/b,22",
        "x" * 71 + ",22",
        ",22",
        "h,70000",
    ):
        with pytest.raises(UsageError):
            validate_nat_access(bad)


def _inet_aton_accepts(text: str) -> bool:
    try:
        socket.inet_aton(text)  # glibc's, the function fwknop calls
    except OSError:
        return False
    return True


@given(
    st.lists(
        st.sampled_from(
            [
                "0",
                "00",
                "01",
                "07",
                "08",
                "010",
                "1",
                "9",
                "25",
                "255",
                "256",
                "377",
                "400",
                "999",
                "0377",
                "1000",
                "",
            ]
        ),
        min_size=1,
        max_size=5,
    ).map(".".join)
    | st.text("0123456789.", max_size=16)
)
@example("1.2.3.4")
@example("010.1.1.1")
@example("08.1.1.1")
@example("255.255.255.255")
@example("256.1.1.1")
@example("1.2.3.256")
@example("0.0.0.0")
@example("1.2.3.04")
def test_ipv4_rule_is_dotted_quad_plus_inet_aton(text: str) -> None:
    expected = 7 <= len(text) <= 15 and text.count(".") == 3 and _inet_aton_accepts(text)
    try:
        validate_ipv4(text)
    except UsageError:
        accepted = False
    else:
        accepted = True
    assert accepted == expected


@given(st.text(st.characters(max_codepoint=0x2FF), min_size=1, max_size=40))
def test_username_rule_matches_the_character_list(name: str) -> None:
    forbidden = set('"/\\[]:;|=,+*?<>')
    expected = len(name) <= 48 and all(" " <= c <= "~" and c not in forbidden for c in name)
    try:
        validate_username(name)
    except UsageError:
        accepted = False
    else:
        accepted = True
    assert accepted == expected


def test_username_rules() -> None:
    assert validate_username("root") == "root"
    assert validate_username("first last") == "first last"
    assert validate_username("a" * 48) == "a" * 48
    for bad in ("", "a" * 49, "ro:ot", "a/b", "x=y", "é", "tab\there"):
        with pytest.raises(UsageError):
            validate_username(bad)


def test_timeout_promotes_and_zero_demotes() -> None:
    plain = SpaMessage.access_request("1.2.3.4", "tcp/22", username="u", now=NOW)
    assert plain.message_type is MessageType.ACCESS
    timed = SpaMessage.access_request("1.2.3.4", "tcp/22", username="u", client_timeout=60, now=NOW)
    assert timed.message_type is MessageType.CLIENT_TIMEOUT_ACCESS
    nat = SpaMessage.access_request(
        "1.2.3.4", "tcp/22", username="u", nat="10.0.0.5,22", client_timeout=60, now=NOW
    )
    assert nat.message_type is MessageType.CLIENT_TIMEOUT_NAT_ACCESS
    local = SpaMessage.access_request(
        "1.2.3.4", "tcp/22", username="u", nat="10.0.0.1,22", local_nat=True, now=NOW
    )
    assert local.message_type is MessageType.LOCAL_NAT_ACCESS
    assert (
        MessageType.CLIENT_TIMEOUT_LOCAL_NAT_ACCESS.with_timeout(False)
        is MessageType.LOCAL_NAT_ACCESS
    )
    assert MessageType.COMMAND.with_timeout(True) is MessageType.COMMAND


def test_message_fields_must_agree_with_the_type() -> None:
    base = dict(random_value="1" * 16, username="u", timestamp=NOW, message="1.2.3.4,tcp/22")
    with pytest.raises(UsageError, match="NAT"):
        SpaMessage(message_type=MessageType.NAT_ACCESS, **base)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="NAT"):
        SpaMessage(message_type=MessageType.ACCESS, nat_access="1.2.3.4,22", **base)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="timeout"):
        SpaMessage(message_type=MessageType.ACCESS, client_timeout=5, **base)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="server auth"):
        SpaMessage(message_type=MessageType.CLIENT_TIMEOUT_ACCESS, server_auth="pw", **base)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="random"):
        SpaMessage(**{**base, "random_value": "12ab567890123456"}, message_type=MessageType.ACCESS)  # type: ignore[arg-type]


def test_command_message() -> None:
    msg = SpaMessage.command_request("1.2.3.4", "touch /tmp/x", username="u", now=NOW)
    assert msg.command == "touch /tmp/x"
    assert msg.access == ()
    with pytest.raises(UsageError):
        SpaMessage.command_request("1.2.3.4", "", username="u", now=NOW)
    with pytest.raises(UsageError, match="too long"):
        SpaMessage.command_request("1.2.3.4", "x" * 200, username="u", now=NOW)


def test_nat_needs_exactly_one_port() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        SpaMessage.access_request("1.2.3.4", "tcp/22,tcp/80", username="u", nat="10.0.0.5,22")


def test_encode_matches_the_spec_example() -> None:
    msg = SpaMessage(
        random_value="7641561991298752",
        username="root",
        timestamp=1795268129,
        message_type=MessageType.ACCESS,
        message="198.18.0.2,tcp/22",
    )
    assert msg.encode() == "7641561991298752:cm9vdA:1795268129:3.0.0:1:MTk4LjE4LjAuMix0Y3AvMjI"
    assert SpaMessage.decode(msg.encode()) == msg


def test_decode_handles_server_auth_and_timeout_positions() -> None:
    base = dict(random_value="1" * 16, username="u", timestamp=NOW, message="1.2.3.4,tcp/22")
    for msg in (
        SpaMessage(message_type=MessageType.ACCESS, server_auth="secretword", **base),  # type: ignore[arg-type]
        SpaMessage(
            message_type=MessageType.CLIENT_TIMEOUT_ACCESS,
            client_timeout=30,
            server_auth="pw",
            **base,
        ),  # type: ignore[arg-type]
        SpaMessage(
            message_type=MessageType.CLIENT_TIMEOUT_NAT_ACCESS,
            client_timeout=30,
            nat_access="10.0.0.5,22",
            server_auth="pw",
            **base,
        ),  # type: ignore[arg-type]
        SpaMessage(message_type=MessageType.CLIENT_TIMEOUT_ACCESS, **base),  # type: ignore[arg-type]
    ):
        assert SpaMessage.decode(msg.encode()) == msg


@pytest.mark.parametrize(
    "encoded",
    [
        "1111111111111111:dQ:1:3.0.0:1",  # too few fields
        "111111111111111:dQ:1:3.0.0:1:MS4yLjMuNCx0Y3AvMjI",  # short random value
        "1111111111111111:dQ:1x:3.0.0:1:MS4yLjMuNCx0Y3AvMjI",  # bad timestamp
        "1111111111111111:dQ:1:3.0.0:7:MS4yLjMuNCx0Y3AvMjI",  # unknown type
        "1111111111111111:dQ:1:3.0.0:1:MS4yLjMuNCx0Y3AvMjI:YQ:YQ",  # too many fields
        "1111111111111111:dQ:1:3.0.0:2:MS4yLjMuNCx0Y3AvMjI",  # NAT field missing
        "1111111111111111:dQ:1:3.0.0:3:MS4yLjMuNCx0Y3AvMjI:x",  # non-digit timeout
        "1111111111111111::1:3.0.0:1:MS4yLjMuNCx0Y3AvMjI",  # empty username
        "1111111111111111:dQ:1:3.0.0:1:MS4yLjMuNCx0Y3AvMA",  # port 0
        "1111111111111111:dQ:1:3.0.0:1:!!",  # not base64
    ],
)
def test_decode_refuses_malformed_fields(encoded: str) -> None:
    with pytest.raises(ValueError):
        SpaMessage.decode(encoded)


def test_random_value_and_time_are_injectable() -> None:
    a = SpaMessage.access_request("1.2.3.4", "tcp/22", username="u", now=NOW, rng=_fixed_rng)
    b = SpaMessage.access_request("1.2.3.4", "tcp/22", username="u", now=NOW, rng=_fixed_rng)
    assert a == b
    assert a.timestamp == NOW
    assert len(a.random_value) == 16
    assert a.random_value.isdigit()
