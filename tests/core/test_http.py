"""SPA over HTTP: the request matches the real client's byte for byte; extraction inverts it."""

from __future__ import annotations

import pytest

from fwknop_core import UsageError, encode_http_request, extract_http_spa, open_packet
from tests.helpers.vectors import hmac_key, rijndael_key, vectors

CASE = next(c for c in vectors() if c["id"] == "transport-http")


def test_request_is_what_the_real_client_sent() -> None:
    request = encode_http_request(CASE["spa_packet"], host="198.18.0.1")
    assert request.decode() == CASE["http_request_as_received"]


def test_extraction_gives_back_the_packet() -> None:
    found = extract_http_spa(CASE["http_request_as_received"].encode())
    assert found is not None
    assert found.data == CASE["spa_packet"]
    assert found.forwarded_for is None
    open_packet(found.data, rijndael_key(CASE["keys"]), hmac_key=hmac_key(CASE["keys"]))


def test_proxy_form_and_forwarded_for() -> None:
    request = encode_http_request(CASE["spa_packet"], host="198.18.0.1", via_proxy=True)
    direct = CASE["http_request_as_received"].encode()
    assert request == direct.replace(b"GET /", b"GET http://198.18.0.1/", 1)
    # the proxy forwards it in origin form, adding who the client was
    with_xff = direct.replace(b"Accept:", b"X-Forwarded-For: 203.0.113.9\r\nAccept:")
    found = extract_http_spa(with_xff)
    assert found is not None
    assert found.data == CASE["spa_packet"]
    assert found.forwarded_for == "203.0.113.9"


def test_non_fwknop_requests_are_ignored() -> None:
    assert extract_http_spa(b"POST / HTTP/1.0\r\n\r\n") is None
    plain = CASE["http_request_as_received"].encode().replace(b"Fwknop/2.6.10", b"curl/8")
    assert extract_http_spa(plain) is None
    assert extract_http_spa(plain, any_user_agent=True) is not None
    assert extract_http_spa(b"GET /\xff\xfe HTTP/1.0\r\nUser-Agent: Fwknop\r\n") is None


def test_header_injection_is_refused() -> None:
    with pytest.raises(UsageError):
        encode_http_request("abc", host="h\r\nX: y")
