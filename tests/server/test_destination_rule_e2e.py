"""ENABLE_DESTINATION_RULE on a real kernel: a knock opens the port on the address it was sent to.

The server has two addresses (198.18.0.1 and 198.18.0.3) behind a
default-drop policy. The real client knocks 198.18.0.1; with the setting,
that address opens and the other stays closed, with nftables as with
iptables (issue 11 item 7: the nftables backend used to open both).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd

pytestmark = REAL_KNOCK_MARKS

KEYS = generate_keys()
OTHER_IP = "198.18.0.3"  # the server's second address
PORT = 4022


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("dr") as made:
        made.server.run(["ip", "addr", "add", f"{OTHER_IP}/24", "dev", made.server_if])
        yield made


def _reaches(pair: NetPair, host: str) -> bool:
    return pair.tcp_open(PORT, host=host, timeout=0.5)


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_only_the_knocked_address_opens(backend: str, pair: NetPair, tmp_path: Path) -> None:
    (drop_policy_nft if backend == "nftables" else drop_policy_iptables)(pair.server)
    pair.listen_tcp(PORT)
    server = OurFwknopd(
        pair.server,
        tmp_path / "ours",
        interface=pair.server_if,
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT 30\n",
        conf_extra="ENABLE_DESTINATION_RULE Y\n",
        firewall=backend,
    ).start()
    assert not _reaches(pair, SERVER_IP) and not _reaches(pair, OTHER_IP)
    real_knock(pair.client, tmp_path / "home", SERVER_IP, "-A", f"tcp/{PORT}",
               keys=key_args(KEYS), allow=CLIENT_IP)  # fmt: skip
    assert wait_for(lambda: _reaches(pair, SERVER_IP), timeout=15), server.log()
    assert not _reaches(pair, OTHER_IP)  # the grant names the knocked address
    assert server.stop() == 0
