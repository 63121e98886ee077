"""ENABLE_IPT_OUTPUT on a real kernel, and a grant that cannot be made whole taken back.

The server namespace drops by default in INPUT and, here, in OUTPUT too,
with nothing that lets replies out: a connection to a granted port works
only if the grant's OUTPUT rule lets the server's answers go (fwknopd's
reply rule, ``--sport PORT`` to the client). Knocked by the real fwknop
client.
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
    net_pair,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd

pytestmark = REAL_KNOCK_MARKS

KEYS = generate_keys()
PORT = 4022
TIMEOUT = 4


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("fo") as made:
        drop_policy_iptables(made.server)
        made.server.run(["iptables", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"])
        made.server.run(["iptables", "-P", "OUTPUT", "DROP"])
        yield made


def _daemon(pair: NetPair, tmp_path: Path, conf: str) -> OurFwknopd:
    return OurFwknopd(
        pair.server,
        tmp_path / "ours",
        interface=pair.server_if,
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\n",
        conf_extra=conf,
        firewall="iptables",
    ).start()


def _knock(pair: NetPair, tmp_path: Path) -> None:
    real_knock(pair.client, tmp_path / "home", SERVER_IP, "-A", f"tcp/{PORT}",
               keys=key_args(KEYS), allow=CLIENT_IP)  # fmt: skip


def _reaches(pair: NetPair) -> bool:
    return pair.tcp_open(PORT, timeout=0.5)


def _rules(pair: NetPair, chain: str) -> str:
    return pair.server.run(["iptables", "-S", chain], check=False).stdout.decode()


def test_the_output_rule_lets_the_answers_out_until_the_timeout(
    pair: NetPair, tmp_path: Path
) -> None:
    pair.listen_tcp(PORT)
    server = _daemon(pair, tmp_path, "ENABLE_IPT_OUTPUT Y\n")
    assert "-A OUTPUT -j FWKNOP_OUTPUT" in _rules(pair, "OUTPUT")
    assert not _reaches(pair)
    _knock(pair, tmp_path)
    assert wait_for(lambda: _reaches(pair), timeout=15), server.log()
    assert (f"-A FWKNOP_OUTPUT -d {CLIENT_IP}/32 -p tcp -m tcp --sport {PORT} -m comment "
            "--comment _exp_") in _rules(pair, "FWKNOP_OUTPUT")  # fmt: skip
    assert wait_for(lambda: not _reaches(pair), timeout=20), server.log()
    assert "_exp_" not in _rules(pair, "FWKNOP_OUTPUT") + _rules(pair, "FWKNOP_INPUT")
    assert server.stop() == 0
    assert "FWKNOP_OUTPUT" not in pair.server.run(["iptables", "-S"]).stdout.decode()


def test_without_the_output_rule_the_input_rule_alone_opens_nothing(
    pair: NetPair, tmp_path: Path
) -> None:
    pair.listen_tcp(PORT)
    server = _daemon(pair, tmp_path, "")
    _knock(pair, tmp_path)
    assert server.wait_log(f"Added access rule to FWKNOP_INPUT for {CLIENT_IP}"), server.log()
    assert f"--dport {PORT}" in _rules(pair, "FWKNOP_INPUT")
    assert not wait_for(lambda: _reaches(pair), timeout=2)  # the answers cannot get out


def test_a_grant_whose_output_rule_fails_is_taken_back_whole(pair: NetPair, tmp_path: Path) -> None:
    pair.listen_tcp(PORT)
    server = _daemon(pair, tmp_path, "ENABLE_IPT_OUTPUT Y\n")
    # someone removes the OUTPUT chain under the running daemon: the second rule must fail
    pair.server.run(["iptables", "-D", "OUTPUT", "-j", "FWKNOP_OUTPUT"])
    pair.server.run(["iptables", "-X", "FWKNOP_OUTPUT"])
    _knock(pair, tmp_path)
    assert server.wait_log("took back 1 rule(s) of a grant that could not be made whole")
    assert server.wait_log(f"firewall: nothing opened for {CLIENT_IP} tcp/{PORT}")
    assert "_exp_" not in _rules(pair, "FWKNOP_INPUT")  # the access rule did not stay behind
    assert not _reaches(pair)
