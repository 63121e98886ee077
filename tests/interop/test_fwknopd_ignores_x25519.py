"""The real fwknopd 2.6.10 never takes an x25519 packet for one of its own.

One real fwknopd sniffs in a namespace with a Rijndael+HMAC stanza. From
the client namespace come an x25519 packet (docs/x25519-spa.md) and then an
ordinary fwknop packet. fwknopd's pre-filter drops the first as "not an SPA
message" (``~`` is outside base64) before any stanza sees it; only the
second reaches a stanza and gets an iptables rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_core import (
    SpaMessage,
    X25519PrivateKey,
    X25519SharedKey,
    build_packet,
    build_x25519_packet,
    generate_keys,
)
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import CLIENT_IP, net_pair

pytestmark = [pytest.mark.interop, pytest.mark.netns]


def test_the_c_fwknopd_drops_an_x25519_packet_as_not_spa(
    real_fwknop: None, namespaces: None, tmp_path: Path
) -> None:
    keys = generate_keys()
    server_key, client_key = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    ours = build_x25519_packet(
        SpaMessage.access_request(CLIENT_IP, "tcp/2222", username="root"),
        X25519SharedKey.for_client(client_key, server_key.public_key),
    )
    theirs = build_packet(
        SpaMessage.access_request(CLIENT_IP, "tcp/22", username="root"),
        keys.rijndael,
        hmac_key=keys.hmac,
    )
    with net_pair("x25519") as pair:
        server = RealFwknopd(
            pair.server, tmp_path, interface=pair.server_if,
            access_conf=f"SOURCE ANY\n{keys.as_text()}",
        ).start()  # fmt: skip
        pair.send_udp([ours])
        pair.send_udp([theirs])
        # taken in order: the fwknop packet's rule logged means the x25519 one was handled
        assert server.wait_granted(22), server.log()[-3000:]
        rules = "\n".join(server.iptables_rules())
        server.stop()
    assert "2222" not in rules
    log = server.log()
    assert "Data is not an SPA message" in log, log[-2000:]
    assert log.count("received with access source match") == 1, log[-2000:]
