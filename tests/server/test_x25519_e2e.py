"""The x25519 mode end to end: our client knocks our fwknopd, which serves the real fwknop too.

Set up as the README tells an administrator and a user to (no key is ever
written by the test itself): ``fwknopd --key-gen-server FILE`` makes the
server's key and prints its public key; ``fwknop add`` makes an x25519
profile with it, ``fwknop keygen`` stores the client's private key in the
real Secret Service keyring, ``fwknop server-stanza`` prints the stanza that
goes into access.conf. Beside it, a Rijndael+HMAC stanza for the real
``/usr/bin/fwknop`` 2.6.10 (on the iptables host, the same stanza holds both
kinds of key).

In namespaces on a real kernel, behind a default-drop policy (nftables, and
iptables): a TCP connect fails before each knock and succeeds after it;
the same packet sent again is refused as a replay; a client not yet in
access.conf is refused, and after a SIGHUP that adds its stanza it gets in
without a restart, while the grants already open stay open; after a SIGHUP
that takes its stanza out again, it is refused.
"""

from __future__ import annotations

import signal
import subprocess
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
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import FWKNOPD, OurFwknopd
from tests.helpers.secret_service import SecretServiceSession

pytestmark = [*REAL_KNOCK_MARKS, pytest.mark.keyring]

POLICIES = {"nftables": drop_policy_nft, "iptables": drop_policy_iptables}
REFUSED_UNKNOWN = "x25519 packet with a key id no stanza names"


def opens(pair: NetPair, port: int, *, timeout: float = 10) -> bool:
    """Whether ``port`` becomes reachable from the client within ``timeout``."""
    return wait_for(lambda: pair.tcp_open(port, timeout=0.5), timeout=timeout)


def x25519_profile(client: OurClient, name: str, port: int, server_public: str) -> str:
    """``fwknop add`` an x25519 profile, ``keygen`` its key pair; its server stanza."""
    added = client.run(
        [
            "add", name, "-D", SERVER_IP, "-A", f"tcp/{port}", "-a", CLIENT_IP,
            "--server-type", "fwknop-tui", "--set", "encryption=x25519",
            "--server-public-key", server_public,
        ]
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    made = client.run(["keygen", "--profile", name])
    assert made.returncode == 0, made.stderr.decode()
    stanza = client.run(["server-stanza", name])
    assert stanza.returncode == 0, stanza.stderr.decode()
    text = stanza.stdout.decode()
    assert "CLIENT_PUBLIC_KEY" in text and "x25519-priv" not in text
    return text


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_our_client_knocks_in_x25519_mode_while_the_real_client_knocks_with_rijndael(
    backend: str, tmp_path: Path, session: SecretServiceSession
) -> None:
    key_file = tmp_path / "etc" / "server_x25519.key"
    key_file.parent.mkdir()
    made = subprocess.run(
        [FWKNOPD, "--key-gen-server", str(key_file)], capture_output=True, check=False, timeout=60
    )
    assert made.returncode == 0, made.stderr.decode()
    server_public = made.stdout.decode().strip()
    assert server_public.startswith("x25519-pub:") and key_file.stat().st_mode & 0o777 == 0o600

    client = OurClient(
        tmp_path / "client",
        env=session.env | {"FWKNOP_TUI_CONFIG_DIR": str(tmp_path / "client" / "config")},
    )
    alice = x25519_profile(client, "alice", 22, server_public)
    assert session.lookup("alice/x25519") is not None  # the private key: in the keyring only
    assert session.lookup("alice/x25519") not in client.profiles.read_text()
    fwknop = generate_keys()
    if backend == "iptables":  # one stanza, both kinds of key
        access = alice + stanza_keys(fwknop) + "FW_ACCESS_TIMEOUT 120\n"
    else:
        access = f"{alice}FW_ACCESS_TIMEOUT 120\n\nSOURCE ANY\n{stanza_keys(fwknop)}"

    with net_pair("x2") as pair:
        POLICIES[backend](pair.server)
        pair.listen_tcp(22, 23, 24)
        server = OurFwknopd(
            pair.server,
            tmp_path / "srv",
            interface=pair.server_if,
            access_conf=access,
            conf_extra=f"SERVER_PRIVATE_KEY_FILE {key_file}\n",
            firewall=backend,
        ).start()
        for port in (22, 23, 24):
            assert not pair.tcp_open(port), port

        sent = client.run(["send", "alice"], ns=pair.client)
        assert sent.returncode == 0, sent.stderr.decode()
        assert opens(pair, 22)
        assert server.wait_log("(user root, stanza #1, x25519 key id ")  # which key: rotation
        assert "opening tcp/22 for 198.18.0.2 for 120 s" in server.log()

        real_knock(pair.client, tmp_path / "real", SERVER_IP, "-A", "tcp/23",
                   keys=key_args(fwknop), allow=CLIENT_IP)  # fmt: skip
        assert opens(pair, 23)
        assert server.wait_log("): opening tcp/23 for 198.18.0.2")  # no key id: Rijndael

        # one packet, sent twice: the second is a replay
        built = client.run(["send", "alice", "--dry-run"])
        assert built.returncode == 0, built.stderr.decode()
        packet = built.stdout.decode().strip()
        assert packet.startswith("~1")
        pair.send_udp([packet, packet], interval=0.3)
        assert server.wait_log("replayed packet")
        assert server.log().count("opening tcp/22") == 2

        # bob is not in access.conf yet: refused before any cryptography
        bob = x25519_profile(client, "bob", 24, server_public)
        sent = client.run(["send", "bob"], ns=pair.client)
        assert sent.returncode == 0, sent.stderr.decode()
        assert server.wait_log(REFUSED_UNKNOWN)
        assert not pair.tcp_open(24)

        with server.access.open("a") as fh:
            fh.write(f"\n{bob}")
        server.signal(signal.SIGHUP)
        assert server.wait_log("configuration reloaded")
        sent = client.run(["send", "bob"], ns=pair.client)
        assert sent.returncode == 0, sent.stderr.decode()
        assert opens(pair, 24)
        assert pair.tcp_open(22) and pair.tcp_open(23)  # the grants before the reload stay

        # bob's key taken out again: refused at the next knock, no restart
        server.access.write_text(access)
        mark = server.mark()
        server.signal(signal.SIGHUP)
        assert server.wait_log("configuration reloaded", since=mark)
        sent = client.run(["send", "bob"], ns=pair.client)
        assert sent.returncode == 0, sent.stderr.decode()
        assert server.wait_log(REFUSED_UNKNOWN, since=mark)
        assert pair.tcp_open(22)
        assert "x25519-priv" not in server.log()
        assert server.stop() == 0
