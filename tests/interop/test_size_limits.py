"""Why our builder keeps Rijndael packets within 140..399 characters: the real fwknopd.

The C client builds packets outside that window and the C server drops
them. Past 399 (a NAT message with a long username, a SHA-512 digest and a
SHA-512 HMAC) fwknopd classifies the packet as GnuPG and refuses it; below
140 (a one-character command, an MD5 digest, no HMAC: 118 characters)
fwknopd ignores it without a word. Each test sends such a packet and one of
ordinary size with the same keys, and shows only the second one handled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_core import (
    MIN_ENCODED,
    DigestType,
    HmacKey,
    HmacType,
    InvalidPacket,
    RejectReason,
    RijndaelKey,
    SpaMessage,
    UsageError,
    build_packet,
    open_packet,
)
from fwknop_core._b64 import b64s_encode
from fwknop_core._primitives import (
    SALTED,
    aes_encrypt,
    derive_key_iv,
    digest_b64,
    pkcs7_pad,
)
from tests.helpers.cfwknopd import RealFwknopd, fwknop_test_packet
from tests.helpers.netns import CLIENT_IP, net_pair

pytestmark = [pytest.mark.interop, pytest.mark.netns]
KEY = RijndaelKey(b"k" * 32)
HKEY = HmacKey(b"h" * 64, HmacType.SHA512)


def _unchecked_packet(msg: SpaMessage) -> str:
    """What the C client would send: no size check."""
    encoded = msg.encode()
    plain = f"{encoded}:{digest_b64(DigestType.SHA512, encoded.encode())}".encode()
    salt = b"saltsalt"
    aes_key, iv = derive_key_iv(KEY.secret, salt)
    text = b64s_encode(
        SALTED + salt + aes_encrypt(KEY.mode, aes_key, iv, pkcs7_pad(plain))
    ).encode()
    return (text[10:] + HKEY.mac(text)).decode()


def _odd_then_normal(
    workdir: Path, access_conf: str, packets: list[str], granted_port: int, conf_extra: str = ""
) -> tuple[list[str], str]:
    """Send ``packets`` to a real fwknopd; once ``granted_port`` is open, its rules and log."""
    with net_pair("fs") as pair:
        server = RealFwknopd(
            pair.server,
            workdir,
            interface=pair.server_if,
            access_conf=access_conf,
            conf_extra=conf_extra,
        ).start()
        pair.send_udp(packets, interval=0.2)
        # fwknopd takes packets in order: once the last one's rule is logged, the others
        # have been handled (and logged) before it
        assert server.wait_granted(granted_port), server.log()
        rules, log = server.iptables_rules(), server.log()
        server.stop()
    return rules, log


@pytest.mark.usefixtures("real_fwknop", "namespaces")
def test_fwknopd_refuses_a_rijndael_packet_of_400_characters(tmp_path: Path) -> None:
    long_msg = SpaMessage.access_request(
        CLIENT_IP, "tcp/30001", username="u" * 36, nat="198.18.0.50,20001", client_timeout=900
    )
    too_long = _unchecked_packet(long_msg)
    assert len(too_long) >= 400
    with pytest.raises(UsageError, match="at most 399"):
        build_packet(long_msg, KEY, hmac_key=HKEY, digest_type=DigestType.SHA512)
    normal = build_packet(
        SpaMessage.access_request(CLIENT_IP, "tcp/30002", username="root"), KEY, hmac_key=HKEY
    )
    conf = (
        f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
        "HMAC_DIGEST_TYPE sha512\n"
    )
    rules, log = _odd_then_normal(
        tmp_path, conf, [too_long, normal], 30002, conf_extra="ENABLE_IPT_FORWARDING Y;\n"
    )
    assert not any("30001" in r for r in rules), rules
    assert "No stanza encryption mode match for encryption type: 2" in log


@pytest.mark.usefixtures("real_fwknop", "namespaces")
def test_fwknopd_ignores_a_packet_under_140_characters_from_the_real_client(
    tmp_path: Path,
) -> None:
    (tmp_path / "home").mkdir()
    short, _fields = fwknop_test_packet(
        [
            "-D",
            "198.18.0.1",
            "-M",
            "cbc",
            "-m",
            "md5",
            "--key-base64-rijndael",
            KEY.to_base64(),
            "-U",
            "u",
            "-a",
            CLIENT_IP,
            "--server-cmd",
            "x",
        ],
        tmp_path / "home",
    )
    assert len(short) < 140
    with pytest.raises(InvalidPacket) as refused:  # we refuse it as fwknopd will
        open_packet(short, KEY)
    assert refused.value.reason is RejectReason.TOO_SHORT
    assert open_packet(short, KEY, min_length=MIN_ENCODED).message.command == "x"
    with pytest.raises(UsageError, match="shorter than 140"):  # and never build one
        build_packet(
            SpaMessage.command_request(CLIENT_IP, "x", username="u"),
            KEY,
            digest_type=DigestType.MD5,
        )
    normal = build_packet(SpaMessage.access_request(CLIENT_IP, "tcp/30003", username="u"), KEY)
    _rules, log = _odd_then_normal(
        tmp_path / "srv", f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\n", [short, normal], 30003
    )
    # only the ordinary packet reached the stanza; the short one left no trace
    assert log.count("received with access source match") == 1, log
    assert "Command messages are not allowed" not in log
