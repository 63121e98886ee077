"""Knock, then ssh: a real OpenSSH client logs in to a real sshd behind a default-drop firewall.

The server namespace runs an sshd of the test's own (its own host key and
authorized key, nothing of this machine's) behind a default-drop input
policy, with a fwknopd in front: ours (nftables), then the real 2.6.10 one
(iptables). From the client namespace, a plain ssh times out; ``fwknop ssh``,
an ssh with ``fwknop connect`` as its ProxyCommand, and an ssh using the
Host block of ``fwknop ssh-config`` each log in and run a command, whose
output is checked. With keep-open, fwknopd sees the knock again while the
session lives.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import (
    REAL_KNOCK_MARKS,
    SERVER_IP,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    wait_for,
)
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import OurFwknopd
from tests.helpers.sshd import SSH, Sshd, openssh_missing

pytestmark = [*REAL_KNOCK_MARKS, pytest.mark.usefixtures("openssh")]

KEYS = generate_keys()


@pytest.fixture(scope="module")
def openssh() -> None:
    """Skip (fail in CI) unless sshd, ssh and ssh-keygen are installed."""
    if reason := openssh_missing():
        pytest.skip(reason)


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("sh") as made:
        yield made


def _client(root: Path, **extra: object) -> OurClient:
    client = OurClient(root)
    client.add_profile(
        "lab", KEYS.as_text(), host=SERVER_IP, access=["tcp/22"], verify_retries=20, **extra
    )
    return client


def _stanza(timeout: int) -> str:
    return f"SOURCE ANY\n{KEYS.as_text()}OPEN_PORTS tcp/22\nFW_ACCESS_TIMEOUT {timeout}\n"


def _ssh(pair: NetPair, client: OurClient, argv: list[str], stdin: bytes = b"") -> tuple[int, str]:
    res = pair.client.run(argv, env=client.env, stdin=stdin, check=False, timeout=120)
    return res.returncode, res.stdout.decode() + res.stderr.decode()


def _log_in_three_ways(pair: NetPair, sshd: Sshd, client: OurClient, tmp_path: Path) -> None:
    opts = sshd.client_options()
    # without a knock the firewall drops the SYN: ssh gives up
    code, out = _ssh(pair, client, [SSH, *opts, "-o", "ConnectTimeout=3", SERVER_IP, "true"])
    assert code == 255, out
    assert not pair.tcp_open(22)
    # 1. fwknop ssh PROFILE [ssh args]
    code, out = _ssh(pair, client, client.argv(["ssh", "lab", *opts, "--", "echo", "one-$((6*7))"]))
    assert code == 0, out + sshd.text()
    assert out.strip() == "one-42"
    # 2. ssh with fwknop connect as ProxyCommand, stdin relayed and its end passed on
    proxy = " ".join(client.argv(["connect", "lab", "%h", "%p"]))
    code, out = _ssh(
        pair,
        client,
        [SSH, *opts, "-o", f"ProxyCommand={proxy}", SERVER_IP, "tr a-z A-Z"],
        stdin=b"through the proxy\n",
    )
    assert code == 0, out + sshd.text()
    assert out == "THROUGH THE PROXY\n"
    # 3. the Host block of fwknop ssh-config, in a config of its own
    block = client.run(["ssh-config", "lab", "--alias", "knocked"])
    assert block.returncode == 0, block.stderr.decode()
    config = sshd.config_for(block.stdout.decode())
    code, out = _ssh(pair, client, [SSH, "-F", str(config), "knocked", "echo three"])
    assert code == 0, out + sshd.text()
    assert out == "three\n"
    assert sshd.text().count("Accepted publickey for root") == 3


@pytest.mark.parametrize("server", ["ours", "real"])
def test_ssh_through_fwknopd(pair: NetPair, tmp_path: Path, server: str) -> None:
    """Ours behind nftables, the real fwknopd 2.6.10 behind iptables."""
    (drop_policy_nft if server == "ours" else drop_policy_iptables)(pair.server, allow_udp=[62201])
    sshd = Sshd(pair.server, tmp_path / "ssh", SERVER_IP).start()
    daemon = OurFwknopd if server == "ours" else RealFwknopd
    daemon(pair.server, tmp_path / "d", interface=pair.server_if, access_conf=_stanza(30)).start()
    _log_in_three_ways(pair, sshd, _client(tmp_path / "client"), tmp_path)


def test_keep_open_knocks_again_while_the_session_lives(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server, allow_udp=[62201])
    sshd = Sshd(pair.server, tmp_path / "ssh", SERVER_IP).start()
    daemon = OurFwknopd(
        pair.server, tmp_path / "ourd", interface=pair.server_if, access_conf=_stanza(3)
    ).start()
    client = _client(tmp_path / "client", keep_open=1)
    session = pair.client.popen(
        client.argv(["ssh", "lab", *sshd.client_options(), "--", "read line; echo $line"]),
        env=client.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert daemon.wait_log("opening tcp/22", timeout=60), daemon.log() + sshd.text()
    # the session waits for its input; meanwhile keep-open knocks every second
    assert wait_for(lambda: daemon.log().count("opening tcp/22") >= 3, timeout=60), daemon.log()
    out, err = session.communicate(b"still here\n", timeout=60)
    assert session.returncode == 0, err.decode() + sshd.text()
    assert out == b"still here\n"
