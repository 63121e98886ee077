"""`fwknop knock` between namespaces: the wire carries exactly the knocks a 1.x server expects.

Our client knocks from the client namespace; in the server namespace (a
default-drop nftables policy, so the knock ports stay closed as they would
behind a knock server) an AF_PACKET capture records what arrives. The
captured packets go through the server's parse_knock and sequence
collector, which must grant; an encrypted sequence must also decode with
the spec's independent decoder to what the profile asked for, knock for
knock (no retransmitted SYN, no extra packet).
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from fwknop_server.knock import Collector, EncryptedRule, Grant, SharedRule, parse_knock

from fwknop_core import KnockKey, parse_shared_sequence
from tests.helpers import lkdecode
from tests.helpers.netns import HELPERS, NetPair, drop_policy_nft, net_pair
from tests.helpers.ourclient import OurClient
from tests.helpers.wait import read_lines_until

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.usefixtures("namespaces")]
NET = (ipaddress.ip_network("198.18.0.0/24"),)
END = b"end of capture"  # a datagram sent last: once it is captured, every knock before it is


def _capture(pair: NetPair, count: int) -> subprocess.Popen[bytes]:
    proc = pair.server.popen(
        [sys.executable, str(HELPERS / "knock_capture.py"), pair.server_if, str(count), "90"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def _captured(pair: NetPair, proc: subprocess.Popen[bytes]) -> list[tuple[float, bytes]]:
    """What the capture saw up to the end marker (sent now, after the client exited)."""
    assert proc.stdout is not None
    pair.send_udp([END.decode()], port=9)
    lines = read_lines_until(proc.stdout, lambda line: END.hex() in line)
    proc.terminate()
    proc.wait(timeout=30)
    assert lines and END.hex() in lines[-1], f"the capture never saw the end marker: {lines}"
    return [(float(t), bytes.fromhex(h)) for t, h in (line.split() for line in lines[:-1])]


def test_encrypted_sequence_on_the_wire_decodes_and_is_granted(tmp_path: Path) -> None:
    client = OurClient(tmp_path)
    key = client.key_file("old", "knockE2Esecret\n")
    with net_pair("kq") as pair:
        drop_policy_nft(pair.server)
        cap = _capture(pair, 32 + 8)  # room for a stray: none may come
        res = client.run(
            ["knock", "-D", pair.server_ip, "-A", "tcp/22", "-s", "-U", "alice",
             "--key-format", "passphrase", "--key-file", str(key), "--rotate-proto",
             "--time-delay", "0.02"],
            ns=pair.client,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr.decode()
        packets = _captured(pair, cap)
    knocks = [parse_knock(ip, t) for t, ip in packets]
    assert all(k is not None for k in knocks)
    assert len(knocks) == 32
    assert [k.proto for k in knocks if k] == [6 if i % 2 == 0 else 17 for i in range(32)]
    ports = [k.port or 0 for k in knocks if k]
    got = lkdecode.decode(ports, "knockE2Esecret", nports=32)
    assert (got["allow_ip"], got["proto"], got["port"], got["user"]) == ("0.0.0.0", 6, 22, "alice")
    rule = EncryptedRule(
        name="e2e", source=NET, key=KnockKey.from_passphrase("knockE2Esecret"),
        open_ports=frozenset({("tcp", 22)}), require_usernames=frozenset({b"alice"}),
    )  # fmt: skip
    collector = Collector([rule])
    decisions = [d for k in knocks if k for d in collector.feed(k)]
    (grant,) = decisions
    assert isinstance(grant, Grant)
    assert (str(grant.allow_ip), grant.ports) == (pair.client_ip, {("tcp", 22)})


def test_shared_sequence_on_the_wire_is_granted(tmp_path: Path) -> None:
    client = OurClient(tmp_path)
    steps = "tcp/5501, udp/5502, icmp, tcp/5504"
    with net_pair("kr") as pair:
        drop_policy_nft(pair.server)
        cap = _capture(pair, 4 + 4)
        res = client.run(
            ["knock", "-D", pair.server_ip, "--shared-sequence", steps, "--time-delay", "0.05"],
            ns=pair.client,
        )
        assert res.returncode == 0, res.stderr.decode()
        packets = _captured(pair, cap)
    knocks = [k for t, ip in packets if (k := parse_knock(ip, t)) is not None]
    assert [(k.proto, k.port) for k in knocks] == [(6, 5501), (17, 5502), (1, None), (6, 5504)]
    rule = SharedRule(
        name="e2e", source=NET, steps=parse_shared_sequence(steps),
        open_ports=frozenset({("tcp", 22)}), min_time_diff=0.01,
    )  # fmt: skip
    collector = Collector([rule])
    (grant,) = [d for k in knocks for d in collector.feed(k)]
    assert isinstance(grant, Grant)
    assert str(grant.allow_ip) == pair.client_ip
