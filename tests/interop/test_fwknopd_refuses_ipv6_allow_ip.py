"""The real fwknopd 2.6.10 refuses an IPv6 allow IP, which is why ours is opt-in.

One real fwknopd sniffs in a namespace with a stanza of our keys; from the
client namespace our core sends a packet whose allow IP is IPv6 (built with
``allow_ipv6=True``) and then an ordinary one. Only the ordinary one gets
an iptables rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_core import SpaMessage, build_packet, generate_keys
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import CLIENT_IP, net_pair

pytestmark = [pytest.mark.interop, pytest.mark.netns]


def test_the_c_fwknopd_refuses_an_ipv6_allow_ip(
    real_fwknop: None, namespaces: None, tmp_path: Path
) -> None:
    keys = generate_keys()
    ipv6 = SpaMessage.access_request("2001:db8::2", "tcp/2222", username="root", allow_ipv6=True)
    ipv4 = SpaMessage.access_request(CLIENT_IP, "tcp/22", username="root")
    with net_pair("v6") as pair:
        server = RealFwknopd(
            pair.server, tmp_path, interface=pair.server_if,
            access_conf=f"SOURCE ANY\n{keys.as_text()}",
        ).start()  # fmt: skip
        pair.send_udp([build_packet(ipv6, keys.rijndael, hmac_key=keys.hmac)])
        pair.send_udp([build_packet(ipv4, keys.rijndael, hmac_key=keys.hmac)])
        # taken in order: the IPv4 packet's rule logged means the IPv6 one was handled
        assert server.wait_granted(22), server.log()
        rules = "\n".join(server.iptables_rules())
        server.stop()
    assert "2222" not in rules and "2001:db8" not in rules
    log = server.log()
    assert "FKO_ERROR_INVALID_DATA_DECODE_ACCESS_VALIDFAIL" in log, log[-2000:]
