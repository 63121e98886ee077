"""Leading-zero and bogus addresses with the real binaries: what fwknopd does, what ours does.

* The real client sends ``-a 198.017.0.2`` as typed; the C fwknopd checks it
  with ``inet_aton`` and iptables reads it the same way: the rule is for
  198.15.0.2. Ours opens 198.15.0.2 too.
* An HTTP request whose ``X-Forwarded-For`` is ``999.1.1.1``: the C fwknopd
  logs "Error parsing X-Forwarded-For header" and opens for the packet's
  source (behind a proxy, the proxy). Ours refuses it by name, opens
  nothing, and logs no traceback. ``198.017.0.2`` there is 198.15.0.2 for
  both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import RijndaelKey, encode_http_request
from tests.helpers.cfwknopd import RealFwknopd, fwknop_test_packet
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
from tests.helpers.ourd import OurFwknopd, nft_set

pytestmark = REAL_KNOCK_MARKS

KEY = RijndaelKey(b"hostile-addresses-test-key-32byt")
STANZA = f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nFW_ACCESS_TIMEOUT 60\n"
HTTP = "ENABLE_SPA_OVER_HTTP Y\nENABLE_X_FORWARDED_FOR Y\nENABLE_TCP_SERVER Y\n"
HTTP += "PCAP_FILTER tcp port 62201\n"


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("ha") as made:
        yield made


def _packet(home: Path, *args: str) -> tuple[str, dict[str, str]]:
    home.mkdir(exist_ok=True)
    return fwknop_test_packet(
        ["-A", "tcp/22", "-D", SERVER_IP, "--key-base64-rijndael", KEY.to_base64(), *args], home
    )


def _with_xff(wire: str, value: str) -> bytes:
    return encode_http_request(wire, host=SERVER_IP).replace(
        b"Connection: close", f"X-Forwarded-For: {value}\r\nConnection: close".encode()
    )


def _c_fwknopd(pair: NetPair, tmp_path: Path, conf_extra: str = "") -> RealFwknopd:
    drop_policy_iptables(pair.server)
    pair.server.run(["iptables", "-I", "INPUT", "-p", "tcp", "--dport", "62201", "-j", "ACCEPT"])
    return RealFwknopd(
        pair.server, tmp_path / "c", interface=pair.server_if, access_conf=STANZA,
        conf_extra=conf_extra.replace("\n", ";\n"),
    ).start()  # fmt: skip


def _ours(pair: NetPair, tmp_path: Path, conf_extra: str = "") -> OurFwknopd:
    drop_policy_nft(pair.server)
    pair.server.run(["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", "62201",
                     "accept"])  # fmt: skip
    return OurFwknopd(
        pair.server, tmp_path / "ours", interface=pair.server_if, access_conf=STANZA,
        conf_extra=conf_extra,
    ).start()  # fmt: skip


def _c_rule_for(c: RealFwknopd, address: str) -> bool:
    return wait_for(
        lambda: any(f"-s {address}/32" in r for r in c.iptables_rules()),
        interval=0.5,
        progress=c.packets_seen,
    )


def test_the_real_client_sends_a_leading_zero_as_typed_and_fwknopd_opens_the_octal_address(
    pair: NetPair, tmp_path: Path
) -> None:
    wire, fields = _packet(tmp_path / "home", "-a", "198.017.0.2")
    assert fields["Message String"] == "198.017.0.2,tcp/22"
    c = _c_fwknopd(pair, tmp_path)
    pair.send_udp([wire])
    assert _c_rule_for(c, "198.15.0.2"), c.log()[-3000:]
    assert "Added access rule to FWKNOP_INPUT for 198.017.0.2 -> 0.0.0.0/0 tcp/22" in c.log()


def test_ours_opens_what_fwknopd_opens_for_a_leading_zero_allow_ip(
    pair: NetPair, tmp_path: Path
) -> None:
    wire, _ = _packet(tmp_path / "home", "-a", "198.017.0.2")
    ours = _ours(pair, tmp_path)
    pair.send_udp([wire])
    assert ours.wait_log("opening tcp/22 for 198.15.0.2 for 60 s"), ours.log()
    assert "198.15.0.2 . tcp . 22" in nft_set(pair.server)
    assert "Traceback" not in ours.log()


def test_fwknopd_opens_for_the_proxy_when_x_forwarded_for_is_no_address(
    pair: NetPair, tmp_path: Path
) -> None:
    """The C fwknopd (where we differ): a bad header falls back to the packet's source."""
    home = tmp_path / "home"
    c = _c_fwknopd(pair, tmp_path, HTTP)
    pair.send_tcp(_with_xff(_packet(home, "-s")[0], "999.1.1.1"))
    assert _c_rule_for(c, CLIENT_IP), c.log()[-3000:]
    assert "Error parsing X-Forwarded-For header: value '999.1.1.1' is not an IP address" in c.log()
    pair.send_tcp(_with_xff(_packet(home, "-s")[0], "198.017.0.2"))
    assert _c_rule_for(c, "198.15.0.2"), c.log()[-3000:]


def test_ours_refuses_a_bad_x_forwarded_for_by_name_without_a_traceback(
    pair: NetPair, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ours = _ours(pair, tmp_path, HTTP)
    for _ in range(3):
        pair.send_tcp(_with_xff(_packet(home, "-s")[0], "999.1.1.1"))
    refused = (
        f"refused SPA packet from {CLIENT_IP} tcp/62201: X-Forwarded-For is not an IPv4 "
        "address: '999.1.1.1'"
    )
    assert wait_for(lambda: ours.log().count(refused) == 3, timeout=30), ours.log()
    pair.send_tcp(_with_xff(_packet(home, "-s")[0], "198.017.0.2"))
    assert ours.wait_log("opening tcp/22 for 198.15.0.2 for 60 s"), ours.log()
    assert "Traceback" not in ours.log()
    assert "internal error" not in ours.log()
    assert CLIENT_IP not in nft_set(pair.server)
