"""Grants as the HA group's stream carries them: the same grant back, nothing else taken."""

from __future__ import annotations

import ipaddress
import json

import pytest
from fwknop_server.grantsync import decode, encode
from fwknop_server.vocab import Grant

from fwknop_core import MessageType

GRANT = Grant(
    source=ipaddress.ip_address("198.18.100.1"),
    destination=ipaddress.ip_address("2001:db8::1"),
    ports=(("tcp", 22), ("udp", 53)),
    timeout=30,
    expires=2_000_000_000,
    stanza=2,
    username="alice",
    message_type=MessageType.CLIENT_TIMEOUT_ACCESS,
)


def test_a_grant_comes_back_as_it_went() -> None:
    assert decode(encode(GRANT)) == GRANT
    assert decode(encode(GRANT).encode()) == GRANT


@pytest.mark.parametrize(
    "change",
    [
        {"ports": []},
        {"ports": [["icmp", 0]]},
        {"ports": [["tcp", 70000]]},
        {"source": "not an address"},
        {"type": 99},
        {"expires": None},
    ],
)
def test_anything_else_is_refused(change: dict[str, object]) -> None:
    data = {**json.loads(encode(GRANT)), **change}
    with pytest.raises(ValueError):
        decode(json.dumps(data))
    with pytest.raises(ValueError):
        decode(b"{not json")
