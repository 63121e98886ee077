"""Why our builder refuses Rijndael packets of 400+ characters: the real fwknopd drops them.

The C client builds such packets (a NAT message with a long username, a
SHA-512 digest and a SHA-512 HMAC passes 399 characters) and fwknopd then
classifies them as GnuPG and refuses them. This test builds one below the
public API, with the raw primitives, and shows the real fwknopd refusing
it while it grants the same keys a packet of ordinary size.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fwknop_core import (
    DigestType,
    HmacKey,
    HmacType,
    RijndaelKey,
    SpaMessage,
    UsageError,
    build_packet,
)
from fwknop_core._b64 import b64s_encode
from fwknop_core._primitives import (
    SALTED,
    aes_encrypt,
    derive_key_iv,
    digest_b64,
    pkcs7_pad,
)
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import CLIENT_IP, net_pair, wait_for

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
    with net_pair("fs") as pair:
        server = RealFwknopd(
            pair.server,
            tmp_path,
            interface=pair.server_if,
            access_conf=conf,
            conf_extra="ENABLE_IPT_FORWARDING Y;\n",
        ).start()
        pair.send_udp([too_long, normal], interval=0.2)
        assert wait_for(
            lambda: any("--dport 30002" in r for r in server.iptables_rules()), timeout=20
        )
        time.sleep(0.5)
        rules = server.iptables_rules()
        log = server.log()
        server.stop()
    assert not any("30001" in r for r in rules), rules
    assert "No stanza encryption mode match for encryption type: 2" in log
