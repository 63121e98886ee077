"""NFQUEUE capture on a real kernel (``ENABLE_NFQ_CAPTURE``, ``-n``), with the real client.

The server's input policy drops by default but lets the SPA port through
to a UDP socket listening on it. Our fwknopd, told to capture from NFQUEUE
(and given an interface that does not exist, so no sniffing could be what
sees the packet), makes the queue rule at start: with iptables fwknopd's
``FWKNOP_NFQ`` chain in ``mangle``, jumped to from INPUT; with nftables a
table of its own. The real fwknop client knocks: the packet is queued (the
rule's counter), given its verdict (dropped on its way in, so the socket
on the SPA port never receives it, as with fwknopd) and granted (a TCP
connect that failed succeeds). At exit the queue rule is gone. The same
through firewalld's passthrough, with firewalld's zone rejecting the SPA port.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwknop_server.capture.nfqueue import queue_drops

from fwknop_core import generate_keys
from tests.helpers.firewalld import firewalld_missing, private_firewalld
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    CLIENT_IP6,
    HELPERS,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    SERVER_IP6,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    stop_process,
    wait_for,
)
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import OurFwknopd

pytestmark = REAL_KNOCK_MARKS

KEYS = generate_keys()
PORT = 4122
QUEUE = 7
SPA_PORT = 62201


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("nq") as made:
        yield made


def _sink(pair: NetPair, port: int) -> subprocess.Popen[bytes]:
    """A UDP socket on the server's ``port`` that prints what reaches it (spa_listener.py)."""
    sink = pair.server.popen(
        [sys.executable, str(HELPERS / "spa_listener.py"), SERVER_IP, str(port)],
        stdout=subprocess.PIPE,
    )
    assert sink.stdout is not None and sink.stdout.readline() == b"ready\n"
    return sink


def _ours(
    pair: NetPair,
    tmp_path: Path,
    conf: str,
    *,
    firewall: str = "nftables",
    args: list[str] | None = None,
) -> OurFwknopd:
    """Our fwknopd on NFQUEUE, on an interface that does not exist: no sniffing sees a packet."""
    return OurFwknopd(
        pair.server,
        tmp_path / "ours",
        interface="nosuchif0",
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT 30\n",
        conf_extra=conf,
        firewall=firewall,
        args=args or [],
    ).start()


def _queued(pair: NetPair) -> str:
    """The queue rule as the kernel lists it: fwknopd's chain (with its packet counter), and
    our nftables table (the nftables backend's, where the kernel has nftables' queue)."""
    iptables = ["iptables", "-w", "-t", "mangle", "-L", "FWKNOP_NFQ", "-v", "-x", "-n"]
    nft = ["nft", "list", "table", "inet", "fwknopd_nfq"]
    return "".join(pair.server.run(argv, check=False).stdout.decode() for argv in (iptables, nft))


def _queued_packets(listing: str) -> int | None:
    """The iptables rule's packet count (None: the rule is nftables')."""
    rule = next((line for line in listing.splitlines() if "NFQUEUE num" in line), None)
    return None if rule is None else int(rule.split()[0])


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_a_real_knock_is_queued_dropped_and_granted(
    backend: str, pair: NetPair, tmp_path: Path
) -> None:
    (drop_policy_iptables if backend == "iptables" else drop_policy_nft)(
        pair.server, allow_udp=[SPA_PORT]
    )
    pair.listen_tcp(PORT)
    sink = _sink(pair, SPA_PORT)
    # the option for one backend, the key for the other: both switch NFQUEUE capture on
    by_option = backend == "iptables"
    conf = f"NFQ_QUEUE_NUMBER {QUEUE}\n" + ("" if by_option else "ENABLE_NFQ_CAPTURE Y\n")
    server = _ours(pair, tmp_path, conf, firewall=backend, args=["-n"] if by_option else [])
    assert f"NFQUEUE {QUEUE}" in server.log()
    rule = _queued(pair)
    assert any(f"{how} {QUEUE}" in rule for how in ("NFQUEUE num", "queue num", "queue to")), rule
    assert not pair.tcp_open(PORT, timeout=0.5)
    # the kernel lists our queue where SIGUSR1's counters read its drops
    proc = pair.server.run(["cat", "/proc/net/netfilter/nfnetlink_queue"]).stdout.decode()
    assert queue_drops(proc, QUEUE) == 0, proc

    real_knock(pair.client, tmp_path / "home", SERVER_IP, "-A", f"tcp/{PORT}",
               keys=key_args(KEYS), allow=CLIENT_IP)  # fmt: skip
    assert pair.wait_open(PORT), server.log()
    assert _queued_packets(_queued(pair)) != 0  # the iptables rule counted it
    # the verdict: the SPA packet was consumed, never delivered to the port's socket
    sink.terminate()
    out, _ = sink.communicate(timeout=30)
    assert out == b"", out
    assert server.stop() == 0
    assert _queued(pair) == ""  # the queue rule went with the daemon


def test_only_the_spa_port_is_queued(pair: NetPair, tmp_path: Path) -> None:
    """Other UDP to the host keeps its way to its socket: the queue rule takes NFQ_PORT only."""
    drop_policy_nft(pair.server, allow_udp=[SPA_PORT + 1])
    sink = _sink(pair, SPA_PORT + 1)
    server = _ours(pair, tmp_path, "ENABLE_NFQ_CAPTURE Y\n")
    pair.send_udp(["hello"], port=SPA_PORT + 1)
    assert wait_for(lambda: sink.poll() is not None, timeout=30)
    assert sink.stdout is not None and sink.stdout.read().startswith(b"udp "), server.log()
    assert server.stop() == 0


def test_an_ipv6_knock_comes_through_the_queue_too(pair: NetPair, tmp_path: Path) -> None:
    """nftables queues IPv6 as IPv4 (or, without its queue expression, ip6tables does)."""
    drop_policy_nft(pair.server)
    pair.listen_tcp(PORT)
    client = OurClient(tmp_path / "client")
    keyfile = client.key_file("v6", KEYS.as_text())
    client.profiles.write_text(
        f'[profiles.v6]\nhost = "{SERVER_IP6}"\nserver_type = "fwknop-tui"\n'
        f'allow_ip = "{CLIENT_IP6}"\nkey_file = "{keyfile}"\naccess = ["tcp/{PORT}"]\n'
    )
    server = _ours(pair, tmp_path, "ENABLE_NFQ_CAPTURE Y\n")
    assert not pair.tcp_open(PORT, host=SERVER_IP6, timeout=0.5)
    sent = client.run(["send", "v6"], ns=pair.client)
    assert sent.returncode == 0, sent.stderr
    assert pair.wait_open(PORT, host=SERVER_IP6), server.log()
    assert server.stop() == 0


def test_through_firewalld_the_queue_chain_goes_by_its_passthrough(
    pair: NetPair, tmp_path: Path
) -> None:
    """firewalld's zone rejects the SPA port; the queue, in mangle before it, still sees it."""
    if reason := firewalld_missing():
        pytest.skip(reason)
    with private_firewalld(pair.server, tmp_path / "fwd", backend="iptables") as firewalld:
        pair.listen_tcp(PORT)
        server = OurFwknopd(
            pair.server,
            tmp_path / "ours",
            interface="nosuchif0",
            access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT 30\n",
            conf_extra="ENABLE_NFQ_CAPTURE Y\n",
            firewall="firewalld",
            env=firewalld.env,
        ).start()
        chain = firewalld.passthrough("-t", "mangle", "-S", "FWKNOP_NFQ")
        assert "--dport 62201 -j NFQUEUE --queue-num 1" in chain, chain
        assert not pair.tcp_open(PORT, timeout=0.5)
        real_knock(pair.client, tmp_path / "home", SERVER_IP, "-A", f"tcp/{PORT}",
                   keys=key_args(KEYS), allow=CLIENT_IP)  # fmt: skip
        assert pair.wait_open(PORT), server.log()
        assert server.proc is not None
        stop_process(server.proc, grace=60)  # each firewall-cmd of the flush takes a while
        assert server.proc.returncode == 0
        assert "FWKNOP_NFQ" not in firewalld.passthrough("-t", "mangle", "-S")
