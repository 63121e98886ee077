"""Field validation speaks a user's words, and never lets a half-typed value through."""

from __future__ import annotations

import pytest

from fwknop_tui.wallet.validate import FieldError, check_host, check_int, check_port


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-1", "must be a number from 1 to 65535, not -1"),
        (-1, "must be a number from 1 to 65535, not -1"),
        ("70000", "must be a number from 1 to 65535, not 70000"),
        ("ssh", "must be a number from 1 to 65535, not 'ssh'"),
        (22.5, "must be a number from 1 to 65535, not 22.5"),
        ([22], "must be a number from 1 to 65535, not a list"),
        (True, "must be a number from 1 to 65535, not true/false"),
    ],
)
def test_a_bad_port_says_what_a_port_is(raw: object, message: str) -> None:
    with pytest.raises(FieldError) as err:
        check_port("port", raw)
    assert err.value.message == message
    assert "integer" not in err.value.message and "string" not in err.value.message


def test_number_text_is_a_number() -> None:
    assert check_port("port", " 2222 ") == 2222
    assert check_int("n", "+5", 0, 9) == 5


@pytest.mark.parametrize("host", ["198.18.", "198.18.0", "198.18.0.", "198.18.0.256", "1.2.3.4.5"])
def test_a_half_typed_address_is_not_a_host(host: str) -> None:
    with pytest.raises(FieldError, match="is not a complete IPv4 address"):
        check_host("host", host)


@pytest.mark.parametrize(
    "host", ["-fw.example.org", "fw..example.org", "fw example.org", "a" * 64 + ".org", "fw/1"]
)
def test_a_malformed_name_is_refused_in_plain_words(host: str) -> None:
    with pytest.raises(FieldError, match="is not a host name"):
        check_host("host", host)


@pytest.mark.parametrize("host", ["fw\0.example.org", "2001:db8::\0", "f\nw", "\x7f"])
def test_control_characters_are_a_field_error_not_a_crash(host: str) -> None:
    with pytest.raises(FieldError, match="is not"):
        check_host("host", host)


@pytest.mark.parametrize(
    ("host", "clean"),
    [
        ("198.18.0.1", "198.18.0.1"),
        ("fw.example.org", "fw.example.org"),
        ("fw.example.org.", "fw.example.org."),
        ("my_host-1", "my_host-1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
    ],
)
def test_good_hosts_pass(host: str, clean: str) -> None:
    assert check_host("host", host) == clean
