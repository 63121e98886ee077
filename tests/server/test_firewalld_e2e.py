"""Our fwknopd with FIREWALL_TYPE firewalld, on a real firewalld, knocked by the real fwknop client.

The server namespace runs firewalld 1.3 as Debian ships it (zone ``public``:
everything but ssh and dhcpv6-client rejected) on a private D-Bus system bus,
and our fwknopd adds fwknopd's direct rules through ``firewall-cmd --direct
--passthrough ipv4``. A TCP connect from the client namespace to a port the
zone rejects fails before the knock, succeeds after it, and fails again once
the access timeout has passed; at exit only our chain is gone, firewalld's
own rules are untouched.

With firewalld on its nftables backend an ACCEPT in iptables does not end the
packet's way through firewalld's own table (fwknopd has the same limit): our
fwknopd says so at start, and the second test shows that it is true.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.firewalld import PrivateFirewalld, firewalld_missing, private_firewalld
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    NetPair,
    net_pair,
    stop_process,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd
from tests.helpers.wait import DEADLINE

pytestmark = REAL_KNOCK_MARKS

PORT = 4022  # not a service of zone public: firewalld rejects it
KEYS = generate_keys()
# seconds a grant lasts: the test reads it back while it is open, through firewall-cmd and
# an --fw-list process, each taking seconds on a loaded machine
TIMEOUT = 20
STANZA = f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {TIMEOUT}\n"


@pytest.fixture
def pair() -> Iterator[NetPair]:
    if reason := firewalld_missing():
        pytest.skip(reason)
    with net_pair("fd") as made:
        yield made


def knock(pair: NetPair, home: Path) -> None:
    """The real client in the client namespace: open tcp/PORT for its address."""
    real_knock(
        pair.client, home, SERVER_IP, "-A", f"tcp/{PORT}", keys=key_args(KEYS), allow=CLIENT_IP
    )


def reachable(pair: NetPair) -> bool:
    """One TCP connect from the client to the server's PORT."""
    return pair.tcp_open(PORT, timeout=0.5)


def start_ours(pair: NetPair, workdir: Path, firewalld: PrivateFirewalld) -> OurFwknopd:
    """Our fwknopd in the server namespace, talking to this firewalld."""
    return OurFwknopd(
        pair.server,
        workdir,
        interface=pair.server_if,
        access_conf=STANZA,
        firewall="firewalld",
        env=firewalld.env,
    ).start()


def stop(server: OurFwknopd) -> int | None:
    """SIGTERM and its exit status; each firewall-cmd takes a while, so the flush does too."""
    assert server.proc is not None
    stop_process(server.proc, grace=60)
    return server.proc.returncode


def test_the_real_client_opens_a_port_through_firewalld(pair: NetPair, tmp_path: Path) -> None:
    with private_firewalld(pair.server, tmp_path / "fwd", backend="iptables") as firewalld:
        pair.listen_tcp(PORT)
        assert not reachable(pair)  # firewalld's zone rejects it
        server = start_ours(pair, tmp_path / "ours", firewalld)
        assert "firewall firewalld" in server.log()
        assert "not on its iptables backend" not in server.log()
        # fwknopd's start-up, seen from iptables: our chain, jumped to first from INPUT
        rules = firewalld.passthrough("-t", "filter", "-S", "INPUT").splitlines()
        assert rules[1] == "-A INPUT -j FWKNOP_INPUT"
        assert "-A INPUT -j INPUT_direct" in rules  # firewalld's own rules are all still there
        assert not reachable(pair)  # our chain is empty: still rejected

        knock(pair, tmp_path / "home")
        assert pair.wait_open(PORT), server.log()
        chain = firewalld.passthrough("-t", "filter", "-S", "FWKNOP_INPUT")
        assert f"-A FWKNOP_INPUT -s {CLIENT_IP}/32 -p tcp -m tcp --dport {PORT} -m comment" in chain
        assert "_exp_" in chain
        listing = subprocess.run(
            pair.server.argv(server.command("--fw-list")),
            capture_output=True, text=True, check=True, env={**os.environ, **firewalld.env},
        ).stdout  # fmt: skip
        # fwknopd's --fw-list: the chain as iptables -L --line-numbers -n shows it
        assert re.search(
            rf"^1 +ACCEPT +6 +-- +{re.escape(CLIENT_IP)} +0\.0\.0\.0/0 +tcp dpt:{PORT} "
            r"/\* _exp_\d+ \*/$",
            listing,
            re.MULTILINE,
        ), listing
        assert "success" not in listing

        assert pair.wait_closed(PORT, timeout=TIMEOUT + DEADLINE), server.log()
        assert "_exp_" not in firewalld.passthrough("-t", "filter", "-S", "FWKNOP_INPUT")
        assert stop(server) == 0
        after = firewalld.passthrough("-t", "filter", "-S")
        assert "FWKNOP_INPUT" not in after  # FLUSH_FIREWD_AT_EXIT: chain and jump are gone
        assert "-A INPUT -j INPUT_direct" in after
        assert firewalld.cmd("--state").stdout.strip() == b"running"


def test_on_firewalds_nftables_backend_a_grant_opens_nothing_and_we_say_so(
    pair: NetPair, tmp_path: Path
) -> None:
    with private_firewalld(pair.server, tmp_path / "fwd", backend="nftables") as firewalld:
        pair.listen_tcp(PORT)
        server = start_ours(pair, tmp_path / "ours", firewalld)
        assert "firewalld is not on its iptables backend" in server.log()
        assert "FirewallBackend=iptables" in server.log()
        knock(pair, tmp_path / "home")
        added = f"Added access rule to FWKNOP_INPUT for {CLIENT_IP} -> 0.0.0.0/0 tcp/{PORT}"
        assert server.wait_log(added), server.log()  # logged once firewall-cmd has answered
        chain = firewalld.passthrough("-t", "filter", "-S", "FWKNOP_INPUT")
        assert f"--dport {PORT}" in chain  # the rule is there ...
        assert not wait_for(lambda: reachable(pair), timeout=2)  # ... and firewalld still rejects
        assert stop(server) == 0
