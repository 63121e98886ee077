"""~/.fwknoprc both ways with the real fwknop 2.6.10, proven on a real fwknopd.

* The real client writes stanzas (``--save-rc-stanza``); ``fwknop import-rc``
  turns them into profiles with their keys in the Secret Service; our
  ``fwknop send`` with each imported profile opens its port.
* A stanza written the fwknop-gui way (``CLIENT_TIMEOUT``) keeps its timeout.
* ``fwknop keygen --profile`` prints the server stanza (used verbatim as
  access.conf here); ``fwknop export-rc`` writes an rc file that the real
  client reads and sends with, and the port opens.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from fwknop_core import HmacKey, HmacType, RijndaelKey
from tests.helpers.cfwknopd import FWKNOP, RealFwknopd
from tests.helpers.netns import CLIENT_IP, SERVER_IP, drop_policy_iptables, net_pair
from tests.helpers.ourclient import OurClient
from tests.helpers.secret_service import SecretServiceSession

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.keyring, pytest.mark.slow]


def _real_client(home: Path, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [FWKNOP, "--no-save-args", *args],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LOGNAME": "root"},
        capture_output=True,
        timeout=60,
        check=False,
        input=b"",
    )


@pytest.mark.usefixtures("real_fwknop", "namespaces")
def test_rc_files_round_trip_with_the_real_client(
    tmp_path: Path, session: SecretServiceSession
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    rc = home / ".fwknoprc"
    rc.write_text("[default]\n")
    rc.chmod(0o600)
    ctr_key, sha384 = (
        RijndaelKey(secrets.token_bytes(32)),
        HmacKey(secrets.token_bytes(96), HmacType.SHA384),
    )
    phrase = secrets.token_hex(8)
    saved = _real_client(
        home,
        [
            "--rc-file",
            str(rc),
            "-n",
            "ctr-box",
            "-D",
            SERVER_IP,
            "-A",
            "tcp/40101",
            "-a",
            CLIENT_IP,
            "--key-base64-rijndael",
            ctr_key.to_base64(),
            "--key-base64-hmac",
            sha384.to_base64(),
            "--hmac-digest-type",
            "sha384",
            "-M",
            "ctr",
            "-m",
            "sha512",
            "-f",
            "120",
            "--save-rc-stanza",
            "--force-stanza",
            "--test",
        ],
    )
    assert saved.returncode == 0, saved.stderr.decode()
    saved = _real_client(
        home,
        [
            "--rc-file",
            str(rc),
            "-n",
            "legacy-box",
            "-D",
            SERVER_IP,
            "-A",
            "tcp/40102",
            "-s",
            "--key-rijndael",
            phrase,
            "-M",
            "legacy",
            "--save-rc-stanza",
            "--force-stanza",
            "--test",
        ],
    )
    assert saved.returncode == 0, saved.stderr.decode()
    gui_key = RijndaelKey(secrets.token_bytes(32))
    gui_hmac = HmacKey(secrets.token_bytes(64))
    with rc.open("a") as fh:  # as fwknop-gui writes it: CLIENT_TIMEOUT, USE_HMAC
        fh.write(
            f"\n[gui-box]\nSPA_SERVER {SERVER_IP}\nACCESS tcp/40103\nALLOW_IP {CLIENT_IP}\n"
            f"KEY_BASE64 {gui_key.to_base64()}\nHMAC_KEY_BASE64 {gui_hmac.to_base64()}\n"
            "USE_HMAC Y\nHMAC_DIGEST_TYPE SHA256\nCLIENT_TIMEOUT 240\n"
        )
    text = rc.read_text()
    assert "[ctr-box]" in text and "KEY_BASE64" in text  # the real client wrote them

    client = OurClient(
        tmp_path / "client",
        env=session.env | {"FWKNOP_TUI_CONFIG_DIR": str(tmp_path / "client" / "config")},
    )
    res = client.run(["import-rc", str(rc)])
    assert res.returncode == 0, res.stderr.decode()
    assert session.lookup("ctr-box/rijndael") == ctr_key.to_base64()
    assert session.lookup("ctr-box/hmac") == sha384.to_base64()
    toml = client.profiles.read_text()
    for secret in (ctr_key.to_base64(), sha384.to_base64(), phrase, gui_key.to_base64()):
        assert secret not in toml
    shown = json.loads(client.run(["show", "ctr-box", "--json"]).stdout)["profile"]
    assert shown["encryption_mode"] == "ctr" and shown["digest_type"] == "sha512"
    assert shown["hmac_type"] == "sha384" and shown["client_timeout"] == 120
    assert shown["allow_ip"] == CLIENT_IP and shown["access"] == ["tcp/40101"]
    legacy = json.loads(client.run(["show", "legacy-box", "--json"]).stdout)["profile"]
    assert legacy["hmac_type"] == "none" and legacy["key_format"] == "passphrase"
    assert legacy["allow_ip"] == "source"
    gui = json.loads(client.run(["show", "gui-box", "--json"]).stdout)["profile"]
    assert gui["client_timeout"] == 240  # the CLIENT_TIMEOUT alias

    # our own profile, keys generated into the keyring; its stanza goes to the server
    assert (
        client.run(
            [
                "add",
                "exported",
                "-D",
                SERVER_IP,
                "-A",
                "tcp/40104",
                "-a",
                CLIENT_IP,
                "-M",
                "cfb",
                "--hmac-digest-type",
                "sha3_256",
            ]
        ).returncode
        == 0
    )
    stanza = client.run(["keygen", "--profile", "exported"])
    assert stanza.returncode == 0, stanza.stderr.decode()
    out_rc = tmp_path / "exported.rc"
    res = client.run(["export-rc", "exported", "-o", str(out_rc)])
    assert res.returncode == 0, res.stderr.decode()
    assert oct(out_rc.stat().st_mode & 0o777) == "0o600"
    assert b"0600" in res.stderr

    access = (
        f"SOURCE ANY\nKEY_BASE64 {ctr_key.to_base64()}\nHMAC_KEY_BASE64 {sha384.to_base64()}\n"
        "HMAC_DIGEST_TYPE sha384\nENCRYPTION_MODE CTR\nMAX_FW_TIMEOUT 1000\n\n"
        f"SOURCE ANY\nKEY {phrase}\nENCRYPTION_MODE legacy\nFW_ACCESS_TIMEOUT 600\n\n"
        f"SOURCE ANY\nKEY_BASE64 {gui_key.to_base64()}\nHMAC_KEY_BASE64 {gui_hmac.to_base64()}\n"
        "MAX_FW_TIMEOUT 1000\n\n"
        + "\n".join(ln for ln in stanza.stdout.decode().splitlines() if not ln.startswith("#"))
        + "\nFW_ACCESS_TIMEOUT 600\n"
    )
    ports = [40101, 40102, 40103, 40104]
    with net_pair("cr") as pair:
        drop_policy_iptables(pair.server, allow_udp=[62201])
        pair.listen_tcp(*ports)
        before = [pair.tcp_open(p, timeout=0.5) for p in ports]
        server = RealFwknopd(
            pair.server, tmp_path / "srv", interface=pair.server_if, access_conf=access
        ).start()
        sent_at = time.time()
        sent = {
            name: client.run(["send", name], ns=pair.client)
            for name in ("ctr-box", "legacy-box", "gui-box")
        }
        real = subprocess.run(
            pair.client.argv(
                [FWKNOP, "--rc-file", str(out_rc), "-n", "exported", "--no-save-args"]
            ),
            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LOGNAME": "root"},
            capture_output=True,
            timeout=60,
            check=False,
        )
        server.wait_granted(*ports)
        after = [pair.tcp_open(p, timeout=1) for p in ports]
        rules, log = server.iptables_rules(), server.log()
        collected_at = time.time()
        server.stop()
    for name, res in sent.items():
        assert res.returncode == 0, f"{name}: {res.stderr.decode()}"
    assert real.returncode == 0, real.stdout.decode() + real.stderr.decode()
    assert before == [False] * 4
    assert after == [True] * 4, log[-3000:]
    expiry = {
        int(m.group(1)): int(m.group(2))
        for r in rules
        if (m := re.search(r"--dport (\d+) -m comment --comment _exp_(\d+)", r))
    }
    # FW_TIMEOUT 120 from the real client's rc; CLIENT_TIMEOUT 240, the fwknop-gui alias;
    # granted (at whole seconds) between the sends and the collection of the rules
    for port, timeout in ((40101, 120), (40103, 240)):
        assert sent_at + timeout - 1 <= expiry[port] <= collected_at + timeout + 1, (
            port, expiry[port] - sent_at, collected_at - sent_at,
        )  # fmt: skip
