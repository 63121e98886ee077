"""send.py: raw packets, the HTTPS address lookup, verify, and IPv6 destinations."""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import HmacKey, RijndaelKey, extract_http_spa, open_packet
from fwknop_tui.errors import ClientUsageError, ResolveError
from fwknop_tui.send import (
    Stage,
    build_icmp_packet,
    build_udp_packet,
    fetch_external_ip,
    knock,
    probe_tcp,
)
from fwknop_tui.wallet.keys import ProfileKeys
from fwknop_tui.wallet.profiles import Profile
from tests.helpers.netns import SERVER_IP6, net_pair
from tests.helpers.tls import make_tls

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
KEYS = ProfileKeys(RijndaelKey(b"r" * 32), HmacKey(b"h" * 64))


def _ones_complement_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_udp_packet_headers_and_checksums() -> None:
    payload = b"A" * 181
    pkt = build_udp_packet("198.18.0.77", "198.18.0.1", 40000, 62201, payload, ident=7)
    ip, udp = pkt[:20], pkt[20:]
    assert ip[0] == 0x45 and ip[8] == 255 and ip[9] == 17
    assert struct.unpack("!H", ip[2:4])[0] == len(pkt)
    assert socket.inet_ntoa(ip[12:16]) == "198.18.0.77"
    assert _ones_complement_ok(ip)
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    assert _ones_complement_ok(pseudo + udp)
    assert struct.unpack("!HHH", udp[:6]) == (40000, 62201, 8 + len(payload))
    assert udp[8:] == payload


def test_icmp_packet_carries_the_payload_after_8_bytes() -> None:
    pkt = build_icmp_packet("198.18.0.2", "198.18.0.1", 0, 0, b"B" * 200)
    assert pkt[9] == 1 and _ones_complement_ok(pkt[:20])
    icmp = pkt[20:]
    assert icmp[:2] == b"\x00\x00" and _ones_complement_ok(icmp) and icmp[8:] == b"B" * 200


@pytest.fixture
def https_myip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A local HTTPS resolver whose answer the test sets; its CA is trusted via SSL_CERT_FILE."""
    tls = make_tls(tmp_path / "tls", "127.0.0.1")
    answer = {"body": "198.18.0.2", "ua": ""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer["ua"] = self.headers.get("User-Agent", "")
            body = (answer["body"] + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls.cert, tls.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    answer["url"] = f"https://127.0.0.1:{server.server_address[1]}/myip"
    yield answer
    server.shutdown()
    server.server_close()


def test_external_address_over_https(https_myip: dict[str, str]) -> None:
    assert fetch_external_ip(https_myip["url"], user_agent="Fwknop/2.6.10") == "198.18.0.2"
    assert https_myip["ua"] == "Fwknop/2.6.10"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("2001:db8::2", "an IPv6 address, and the C fwknopd 2.6 only takes IPv4"),
        ("<html>", "did not answer with an IPv4"),
    ],
)
def test_external_address_answers_that_cannot_be_used(
    https_myip: dict[str, str], body: str, needle: str
) -> None:
    https_myip["body"] = body
    with pytest.raises(ResolveError, match=needle):
        fetch_external_ip(https_myip["url"], user_agent="x")


def test_an_ipv6_external_address_is_taken_for_our_server(https_myip: dict[str, str]) -> None:
    https_myip["body"] = "2001:db8::2\n"
    assert fetch_external_ip(https_myip["url"], user_agent="x", ipv6=True) == "2001:db8::2"
    https_myip["body"] = "2001:db8::zz"
    with pytest.raises(ResolveError, match="did not answer with an IP address"):
        fetch_external_ip(https_myip["url"], user_agent="x", ipv6=True)


def test_untrusted_certificates_are_refused(
    https_myip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(ResolveError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fetch_external_ip(https_myip["url"], user_agent="x")


def test_knock_reports_stages_in_order_and_can_be_cancelled() -> None:
    seen = []
    profile = Profile.from_table(
        "p",
        {
            "host": "127.0.0.1",
            "port": 9,
            "verify": "127.0.0.1:9",
            "verify_retries": 50,
            "verify_interval": 1.0,
        },
    )
    cancel = threading.Event()
    cancel.set()
    started = time.monotonic()
    result = knock(profile, lambda _p: KEYS, on_stage=seen.append, cancel=cancel)
    assert [s.stage for s in seen] == [
        Stage.KEYS,
        Stage.RESOLVE,
        Stage.BUILD,
        Stage.SEND,
        Stage.VERIFY,
    ]
    assert result.verify is not None and result.verify.cancelled and not result.verify.ok
    assert time.monotonic() - started < 10


def test_probe_counts_attempts_and_tries_fast_first() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        assert probe_tcp("127.0.0.1", port, retries=3, interval=0.1).attempts == 1
    failed = probe_tcp("127.0.0.1", port, retries=3, interval=0.05)
    # retries x interval is the budget: 10, 20, 40 ms apart first, then every 50 ms
    assert not failed.ok and failed.attempts >= 4
    assert failed.seconds >= 0.15


@pytest.mark.netns
@pytest.mark.usefixtures("namespaces")
@pytest.mark.parametrize("transport", ["udp", "tcp", "http"])
def test_ipv6_destinations(transport: str, tmp_path: Path) -> None:
    """fwknopd 2.6 cannot take IPv6, so a listener in the namespace checks what arrives."""
    from tests.helpers.ourclient import OurClient

    client = OurClient(tmp_path)
    keyfile = client.key_file(
        "k", f"KEY_BASE64:{KEYS.rijndael.to_base64()} HMAC_KEY_BASE64:{KEYS.hmac.to_base64()}"
    )  # type: ignore[union-attr]
    client.profiles.write_text(
        f'[profiles.v6]\nhost = "{SERVER_IP6}"\nkey_file = "{keyfile}"\nallow_ip = "198.18.0.2"\n'
    )
    with net_pair("c6") as pair:
        listener = pair.server.popen(
            [sys.executable, str(HELPERS / "spa_listener.py"), SERVER_IP6, "62201"],
            stdout=subprocess.PIPE,
        )
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == b"ready"
        res = client.run(["send", "v6", "-P", transport, "-6"], ns=pair.client)
        assert res.returncode == 0, res.stderr.decode()
        kind, hexdata = listener.stdout.readline().decode().split()
        listener.wait(timeout=30)
    assert kind == ("udp" if transport == "udp" else "tcp")
    data = bytes.fromhex(hexdata)
    if transport == "http":
        spa = extract_http_spa(data)
        assert spa is not None and f"Host: [{SERVER_IP6}]".encode() in data
        data = spa.data.encode()
    opened = open_packet(data.decode(), KEYS.rijndael, hmac_key=KEYS.hmac, now=time.time())  # type: ignore[arg-type]
    assert opened.message.message == "198.18.0.2,tcp/22"


def test_an_ipv6_allow_ip_goes_in_the_packet_only_for_our_server() -> None:
    from fwknop_core import InvalidPacket, generate_keys

    keys = generate_keys()
    profile = Profile.from_table(
        "v6", {"host": "127.0.0.1", "allow_ip": "2001:db8::2", "server_type": "fwknop-tui"}
    )
    result = knock(profile, ProfileKeys(rijndael=keys.rijndael, hmac=keys.hmac), dry_run=True)
    assert result.allow_ip == "2001:db8::2"
    with pytest.raises(InvalidPacket):  # what the C fwknopd does with it
        open_packet(result.packet, keys.rijndael, hmac_key=keys.hmac)
    opened = open_packet(result.packet, keys.rijndael, hmac_key=keys.hmac, allow_ipv6=True)
    assert opened.message.allow_ip == "2001:db8::2"


@pytest.mark.parametrize(
    ("answer", "server_type", "expected"),
    [
        ("198.18.0.7", "fwknopd", "198.18.0.7"),
        ("source", "fwknopd", "0.0.0.0"),
        ("2001:db8::2", "fwknop-tui", "2001:db8::2"),
        ("2001:db8::2", "fwknopd", None),  # the C fwknopd 2.6 refuses an IPv6 allow IP
        ("not an address", "fwknopd", None),
    ],
)
def test_an_asked_allow_ip_is_checked_as_the_profiles_own(
    answer: str, server_type: str, expected: str | None
) -> None:
    from fwknop_tui.errors import ClientUsageError

    profile = Profile.from_table(
        "p", {"host": "127.0.0.1", "allow_ip": "ask", "server_type": server_type}
    )

    def run() -> str:
        return knock(profile, KEYS, dry_run=True, ask_allow_ip=lambda: f" {answer} ").allow_ip

    if expected is not None:
        assert run() == expected
        return
    with pytest.raises(ClientUsageError) as refused:
        run()
    if ":" in answer:
        assert str(refused.value) == (
            "the C fwknopd 2.6 refuses an IPv6 allow IP: use an IPv4 address or "
            '"source", or set server_type = "fwknop-tui" if the server runs ours'
        )
    else:
        assert "'not an address'" in str(refused.value)


def test_a_gnupg_home_that_is_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    """Found importing fwknop's own rc files (GPG_HOMEDIR conf/client-gpg): it was a traceback."""
    profile = Profile.from_table(
        "g",
        {
            "host": "127.0.0.1",
            "encryption": "gpg",
            "gpg_recipient": "361BBAD4",
            "gpg_home": str(tmp_path / "no-such-dir"),
            "hmac_type": "none",
        },
    )
    with pytest.raises(ClientUsageError, match=r"gpg_home .*no-such-dir is not a directory"):
        knock(profile, ProfileKeys(), dry_run=True)
