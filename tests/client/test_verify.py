"""A verify that does not lie (issue 13): probe before the knock, retry fast after it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from fwknop_tui.probe import FIRST_SYN_WINDOW, answered_first_syn, attempt_offsets
from fwknop_tui.send import knock
from fwknop_tui.wallet.keys import ProfileKeys
from fwknop_tui.wallet.profiles import Profile
from tests.helpers.netns import SERVER_IP, drop_policy_nft, net_pair
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import OurFwknopd
from tests.helpers.wait import wait_for

KEYS = generate_keys()
PROFILE_KEYS = ProfileKeys(KEYS.rijndael, KEYS.hmac)


def test_attempts_start_10_ms_apart_and_back_off_to_the_interval() -> None:
    assert attempt_offsets(5.0, 1.0) == [
        0.0, 0.01, 0.03, 0.07, 0.15, 0.31, 0.63, 1.27, 2.27, 3.27, 4.27,
    ]  # fmt: skip
    # the old loop made one attempt per interval: 5 in 5 s, the first retry after a second
    assert len([t for t in attempt_offsets(5.0, 1.0) if t < 0.1]) == 4
    assert attempt_offsets(0.05, 1.0) == [0.0, 0.01, 0.03]
    assert FIRST_SYN_WINDOW <= 1.0


def _local(port: int, **extra: object) -> Profile:
    return Profile.from_table(
        "local",
        {"host": "127.0.0.1", "port": 9, "verify": f"127.0.0.1:{port}", **extra},
    )


def test_a_port_open_before_the_knock_is_reported_as_proving_nothing() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        result = knock(_local(srv.getsockname()[1]), PROFILE_KEYS)
    assert result.verify is not None
    assert result.verify.ok and result.verify.open_before
    detail = result.stages[-1].detail
    assert "already open before the knock: this proves nothing" in detail


def test_the_verified_connection_can_be_kept() -> None:
    kept: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as srv:
        result = knock(_local(srv.getsockname()[1]), PROFILE_KEYS, on_connect=kept.append)
        conn, _ = srv.accept()
        with conn, kept[0] as mine:
            mine.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    assert result.verify is not None and result.verify.ok


def test_a_closed_port_fails_within_the_budget() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        result = knock(_local(port, verify_retries=2, verify_interval=0.05), PROFILE_KEYS)
    assert result.verify is not None
    assert not result.verify.ok and not result.verify.open_before
    assert result.verify.attempts == len(attempt_offsets(0.1, 0.05))


def test_a_verify_target_that_cannot_be_resolved_stops_before_the_knock() -> None:
    from fwknop_tui.errors import ResolveError

    profile = _local(22).with_changes({"verify": "no-such-host.invalid:22"})
    with pytest.raises(ResolveError):
        knock(profile, PROFILE_KEYS)


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.usefixtures("namespaces")
def test_behind_a_drop_firewall_the_knock_verifies_and_a_bad_knock_is_not_verified(
    tmp_path: Path,
) -> None:
    """Our fwknopd, default drop: a good knock verifies; wrong keys during a grant prove nothing."""
    client = OurClient(tmp_path / "client")
    target = {"host": SERVER_IP, "access": ["tcp/2222"], "verify_retries": 10}
    client.add_profile("lab", KEYS.as_text(), **target)
    client.add_profile("wrong", generate_keys().as_text(), **target)
    stanza = f"SOURCE ANY\n{KEYS.as_text()}FW_ACCESS_TIMEOUT 60\n"
    with net_pair("vf") as pair:
        drop_policy_nft(pair.server, allow_udp=[62201])
        pair.listen_tcp(2222)
        daemon = OurFwknopd(
            pair.server, tmp_path / "d", interface=pair.server_if, access_conf=stanza
        ).start()
        assert not pair.tcp_open(2222)
        res = client.run(["send", "lab", "--verify", "--json"], ns=pair.client)
        assert res.returncode == 0, res.stderr.decode() + daemon.log()
        verify = json.loads(res.stdout)["verify"]
        assert verify["ok"] and not verify["open_before"]
        # wrong keys while the first grant is still open: the port answers, but not thanks
        # to this knock, and the command says so instead of "verified"
        res = client.run(["send", "wrong", "--verify"], ns=pair.client)
        assert res.returncode == 0
        assert b"already answered before the knock, so the verify proves nothing" in res.stderr
        assert b"verified" not in res.stderr
        res = client.run(["send", "wrong", "--verify", "--json"], ns=pair.client)
        verify = json.loads(res.stdout)["verify"]
        assert verify["ok"] and verify["open_before"]
        assert daemon.wait_log("HMAC mismatch")


def test_a_first_syn_answered_is_told_from_a_retransmitted_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv, socket.socket() as sock:
        sock.connect(srv.getsockname())
        assert answered_first_syn(sock, time.monotonic() - 30)  # however late we look


@pytest.mark.netns
@pytest.mark.usefixtures("namespaces")
def test_a_port_opened_while_the_probe_waited_is_not_called_open_before() -> None:
    """The probe's SYN is dropped, the rule comes after its retransmission: not 'before'."""
    with net_pair("vr") as pair:
        drop_policy_nft(pair.server)
        pair.listen_tcp(2222)
        code = (
            "import selectors, socket, sys, time\n"
            "from fwknop_tui.probe import PreProbe, answered_first_syn\n"
            f"pre = PreProbe(socket.AF_INET, '{SERVER_IP}', 2222)\n"
            "print('started', flush=True)\n"
            "sel = selectors.DefaultSelector(); sel.register(pre.sock, selectors.EVENT_WRITE)\n"
            "assert sel.select(30)\n"
            "print(answered_first_syn(pre.sock, pre.started), flush=True)\n"
        )
        probe = pair.client.popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert probe.stdout is not None
        assert probe.stdout.readline() == b"started\n"
        # the kernel retransmits the first SYN (after its 1 s timeout): only then open the port
        assert wait_for(
            lambda: (
                "retrans:"
                in pair.client.run(["ss", "-tin", "dst", f"{SERVER_IP}:2222"]).stdout.decode()
            )
        )
        pair.server.run(["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport",
                         "2222", "accept"])  # fmt: skip
        assert probe.stdout.readline() == b"False\n"
        probe.wait(30)
