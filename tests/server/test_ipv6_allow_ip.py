"""An IPv6 allow IP (our extension) is granted when the firewall can open for IPv6, else refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import Accepted, Packet, Reason, Refused

from fwknop_core import build_packet

from .test_processor import HKEY, KEY, NOW, _conf, _msg, _stanzas

SRC4 = ipaddress.ip_address("198.18.0.2")


def test_an_ipv6_allow_ip_is_opened_for_when_the_firewall_can(tmp_path: Path) -> None:
    stanzas = _stanzas(_conf(KEY, HKEY, "REQUIRE_SOURCE_ADDRESS Y"), tmp_path)
    wire = build_packet(_msg(allow="2001:db8::2", allow_ipv6=True), KEY, hmac_key=HKEY)
    packet = Packet(wire.encode(), SRC4, None)  # the packet itself may come over IPv4
    accepted = Processor(stanzas, Settings(ipv6_grants=True)).process(packet, NOW)
    assert isinstance(accepted, Accepted)
    assert accepted.grant.source == ipaddress.ip_address("2001:db8::2")
    assert accepted.grant.ports == (("tcp", 22),)
    refused = Processor(stanzas, Settings()).process(packet, NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.IPV6_ALLOW
    assert "2001:db8::2" in refused.detail
