"""Our ``fwknop send`` knocks the real fwknopd 2.6.10 and the port opens.

One real fwknopd runs in a server namespace behind a default-drop input
policy, sniffing UDP, TCP port 62201 and ICMP, with its TCP server and SPA
over HTTP turned on. Our command, run as a process in the client namespace
with keys in a 0600 key file, knocks once per transport, each asking for its
own port where a listener waits. The proof for each is a TCP connection that
fails before the knock and succeeds after it, plus fwknopd's rule.

A second fwknopd holds one stanza per HMAC type and cipher mode (and key
kind); our command knocks every one of them. fwknopd takes one packet at a
time, with several iptables runs each, and its capture drops packets that
arrive while a backlog waits: each knock waits until it is at most a few
packets behind (see tests/helpers/cfwknopd.py).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from fwknop_core import DigestType, EncryptionMode, HmacKey, HmacType, RijndaelKey
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import CLIENT_IP, SERVER_IP, drop_policy_iptables, net_pair
from tests.helpers.ourclient import OurClient
from tests.helpers.tls import make_tls

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

SPOOFED = "198.18.0.77"
CONF_EXTRA = (
    "PCAP_FILTER                 udp or tcp port 62201 or icmp;\n"
    "ENABLE_TCP_SERVER           Y;\n"
    "TCPSERV_PORT                62201;\n"
    "ENABLE_SPA_OVER_HTTP        Y;\n"
)
# case -> (port to open, extra options for `fwknop send`)
CASES: dict[str, tuple[int, list[str]]] = {
    "udp": (40001, ["-P", "udp"]),
    "tcp": (40002, ["-P", "tcp"]),
    "http": (40003, ["-P", "http"]),
    "icmp": (40004, ["-P", "icmp"]),
    "udpraw-spoofed": (40005, ["-P", "udpraw", "-Q", SPOOFED, "-a", CLIENT_IP]),
    "udp-random-port": (40006, ["-P", "udp", "-r"]),
    "udp-resolve-https": (40007, ["-P", "udp", "-R"]),
    "udp-verify": (  # up to 30 s: the real fwknopd's grant takes seconds on a loaded machine
        40008,
        ["-P", "udp", "--verify", "--verify-retries", "120", "--verify-interval", "0.25"],
    ),
}


@dataclass
class TransportRun:
    before: dict[str, bool]
    after: dict[str, bool]
    results: dict[str, subprocess.CompletedProcess[bytes]]
    rules: list[str]
    log: str
    resolver_log: str


def _key_text(key: RijndaelKey, hkey: HmacKey | None) -> str:
    text = f"KEY_BASE64: {key.to_base64()}\n"
    if hkey is not None:
        text += f"HMAC_KEY_BASE64: {hkey.to_base64()}\n"
    return text


@cache
def run_transports() -> TransportRun:
    """One fwknopd, one knock per transport case; evidence collected once."""
    work = Path(tempfile.mkdtemp(prefix="client-transports-"))
    key = RijndaelKey(secrets.token_bytes(32))
    hkey = HmacKey(secrets.token_bytes(64), HmacType.SHA256)
    access = (
        "SOURCE              ANY\n"
        f"KEY_BASE64          {key.to_base64()}\n"
        f"HMAC_KEY_BASE64     {hkey.to_base64()}\n"
        "HMAC_DIGEST_TYPE    sha256\n"
        "FW_ACCESS_TIMEOUT   600\n"
    )
    client = OurClient(work / "client")
    keyfile = client.key_file("transport", _key_text(key, hkey))
    tls = make_tls(work / "tls", SERVER_IP)
    client.env["SSL_CERT_FILE"] = str(tls.ca)
    client.profiles.write_text(
        "# transports test\n"
        "[profiles.lab]\n"
        f'host = "{SERVER_IP}"\n'
        f'key_file = "{keyfile}"\n'
        f'resolve_url = "https://{SERVER_IP}:8443/myip"\n'
    )
    ports = [port for port, _ in CASES.values()]
    with net_pair("ct") as pair:
        drop_policy_iptables(pair.server, allow_udp=[62201])
        pair.server.run(
            ["iptables", "-I", "INPUT", "-p", "tcp", "--dport", "62201", "-j", "ACCEPT"]
        )
        pair.server.run(["iptables", "-I", "INPUT", "-p", "tcp", "--dport", "8443", "-j", "ACCEPT"])
        pair.listen_tcp(*ports)
        resolver = pair.server.popen(
            [
                sys.executable,
                str(Path(__file__).parents[1] / "helpers" / "https_myip.py"),
                str(tls.cert),
                str(tls.key),
                SERVER_IP,
                "8443",
                CLIENT_IP,
            ],
            stdout=subprocess.PIPE,
        )
        assert resolver.stdout is not None
        assert resolver.stdout.readline().strip() == b"ready"
        before = {case: pair.tcp_open(port, timeout=0.5) for case, (port, _) in CASES.items()}
        server = RealFwknopd(
            pair.server,
            work / "srv",
            interface=pair.server_if,
            access_conf=access,
            conf_extra=CONF_EXTRA,
        ).start()
        results = {}
        for case, (port, extra) in CASES.items():
            results[case] = client.run(
                ["send", "lab", "-A", f"tcp/{port}", *extra], ns=pair.client, timeout=120
            )
            server.wait_granted(port)  # one knock at a time: each case stands on its own
        after = {case: pair.tcp_open(port, timeout=1) for case, (port, _) in CASES.items()}
        rules = server.iptables_rules()
        log = server.log()
        server.stop()
        resolver.terminate()
        resolver_log = resolver.stdout.read(4096).decode(errors="replace")
    return TransportRun(before, after, results, rules, log, resolver_log)


@pytest.mark.usefixtures("real_fwknop", "namespaces")
@pytest.mark.xdist_group("client-transports")
@pytest.mark.parametrize("case", list(CASES))
def test_our_send_opens_the_port_over_each_transport(case: str) -> None:
    run = run_transports()
    res = run.results[case]
    port = CASES[case][0]
    assert res.returncode == 0, res.stderr.decode()
    assert run.before[case] is False, "the port was open before the knock"
    assert run.after[case] is True, f"port {port} did not open; fwknopd log:\n{run.log[-3000:]}"
    assert any(
        re.match(rf"^-A FWKNOP_INPUT -s {CLIENT_IP}/32 -p tcp -m tcp --dport {port} ", r)
        for r in run.rules
    ), run.rules
    if case == "udp-verify":
        assert re.search(
            rb"verified: 198\.18\.0\.1:40008 answered [0-9]+ ms after the knock", res.stderr
        )
    if case == "udp-resolve-https":
        assert f"allow {CLIENT_IP}".encode() in res.stderr
        assert "Fwknop/2.6.10" in run.resolver_log


def _combos() -> list[tuple[HmacType | None, EncryptionMode, str]]:
    modes = [m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC]
    return [
        (h, m, k)
        for h in [None, *HmacType]
        for m in modes
        for k in ("base64", "passphrase")
        if not (m is EncryptionMode.LEGACY and h is not None)
    ]


COMBOS = _combos()


def _combo_id(combo: tuple[HmacType | None, EncryptionMode, str]) -> str:
    h, m, k = combo
    return f"{h.fwknop_name if h else 'nohmac'}-{m.label}-{k}"


@dataclass
class MatrixRun:
    results: dict[str, subprocess.CompletedProcess[bytes]]
    granted: set[int]
    log: str


@cache
def run_matrix() -> MatrixRun:
    """One fwknopd with a stanza per combination; our command knocks each."""
    work = Path(tempfile.mkdtemp(prefix="client-matrix-"))
    client = OurClient(work / "client")
    stanzas, profiles = [], ["# one profile per HMAC type, cipher mode and key kind\n"]
    digests = list(DigestType)
    for i, combo in enumerate(COMBOS):
        h, mode, kind = combo
        name = _combo_id(combo)
        port = 41000 + i
        if kind == "passphrase":
            phrase = secrets.token_hex(8 if mode is EncryptionMode.LEGACY else 12)
            key_line, key_text = f"KEY {phrase}", phrase
        else:
            raw = secrets.token_bytes(16 if mode is EncryptionMode.LEGACY else 32)
            b64 = RijndaelKey(raw, mode).to_base64()
            key_line, key_text = f"KEY_BASE64 {b64}", b64
        lines = ["SOURCE ANY", key_line, f"ENCRYPTION_MODE {mode.label}", "FW_ACCESS_TIMEOUT 600"]
        fields = [
            f"[profiles.{name}]",
            f'host = "{SERVER_IP}"',
            f'access = ["tcp/{port}"]',
            f'encryption_mode = "{mode.label.lower()}"',
            f'digest_type = "{digests[i % len(digests)].fwknop_name}"',
            f'key_format = "{kind}"',
            f'key_file = "{client.key_file(name, key_text + chr(10))}"',
        ]
        if h is None:
            fields.append('hmac_type = "none"')
        else:
            hraw = secrets.token_bytes(h.default_key_length)
            hb64 = HmacKey(hraw, h).to_base64()
            lines += [f"HMAC_KEY_BASE64 {hb64}", f"HMAC_DIGEST_TYPE {h.fwknop_name}"]
            fields += [
                f'hmac_type = "{h.fwknop_name}"',
                f'hmac_key_file = "{client.key_file(name + "-hmac", "HMAC_KEY_BASE64:" + hb64)}"',
            ]
        stanzas.append("\n".join(lines) + "\n\n")
        profiles.append("\n".join(fields) + "\n\n")
    client.profiles.write_text("".join(profiles))
    with net_pair("cm") as pair:
        server = RealFwknopd(
            pair.server,
            work / "srv",
            interface=pair.server_if,
            access_conf="".join(stanzas),
        ).start()
        results = {}
        for sent, combo in enumerate(COMBOS):
            server.wait_taken(sent - 4)
            name = _combo_id(combo)
            res = client.run(["send", name], ns=pair.client)
            if res.returncode != 0 and b"at most 399" in res.stderr:  # too big with this digest
                res = client.run(["send", name, "-m", "md5"], ns=pair.client)
            results[name] = res
        wanted = {41000 + i for i in range(len(COMBOS))}

        def granted() -> set[int]:
            return {
                int(m.group(1))
                for r in server.iptables_rules()
                if (m := re.search(rf"-s {CLIENT_IP}/32 -p tcp -m tcp --dport (\d+) ", r))
            }

        server.wait_granted(*wanted)
        got, log = granted(), server.log()
        server.stop()
    return MatrixRun(results, got, log)


@pytest.mark.usefixtures("real_fwknop", "namespaces")
@pytest.mark.xdist_group("client-matrix")
@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_our_send_works_for_every_hmac_type_and_cipher_mode(
    combo: tuple[HmacType | None, EncryptionMode, str],
) -> None:
    run = run_matrix()
    name = _combo_id(combo)
    res = run.results[name]
    assert res.returncode == 0, res.stderr.decode()
    port = 41000 + COMBOS.index(combo)
    assert port in run.granted, f"no grant for {name} (port {port}):\n{run.log[-3000:]}"
