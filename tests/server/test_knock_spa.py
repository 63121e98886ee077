"""fwknop 1.x keywords in SPA stanzas: REQUIRE_OS over TCP (our extension) and CMD_REGEX."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fwknop_server.access import load_access
from fwknop_server.knock import OsDatabase, SynMemory, p0f_raw_signature, parse_knock
from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import Accepted, Packet, Reason, Refused, RunCommand

from fwknop_core import HmacKey, RijndaelKey, SpaMessage, build_packet
from tests.helpers import packets as pk
from tests.helpers.legacy import os_fingerprint

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
NOW = 1_800_000_000
CLIENT, SERVER = "198.18.0.2", "198.18.0.1"
KEYS = f"KEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
# a p0f v3 signature for current Linux on a 1500-byte link (any window scale): the recorded
# 1.x client's SYN (os-fingerprint.json) and the test packets' meet it
LINUX_P0F = (
    "[tcp:request]\nlabel = s:unix:Linux:6.x (test)\n"
    "sig = *:64:0:*:mss*44,*:mss,sok,ts,nop,ws:df,id+:0\n"
)


def _processor(tmp_path: Path, stanza: str, syns: SynMemory | None = None) -> Processor:
    path = tmp_path / "access.conf"
    path.write_text(f"SOURCE ANY\n{KEYS}{stanza}")
    database = OsDatabase.from_texts(p0f=[("mine.fp", LINUX_P0F)])
    return Processor(load_access([path]), Settings(max_age=120), syns=syns, os_db=database)


def _spa(proto: int, *, sport: int = 40000, command: str | None = None) -> Packet:
    if command is not None:
        msg = SpaMessage.command_request(CLIENT, command, username="u", now=NOW)
    else:
        msg = SpaMessage.access_request(CLIENT, "tcp/22", username="u", now=NOW)
    data = build_packet(msg, KEY, hmac_key=HKEY).encode()
    return Packet(data, ipaddress.ip_address(CLIENT), ipaddress.ip_address(SERVER), proto,
                  sport, 62201)  # fmt: skip


def _seen(syns: SynMemory, syn: bytes) -> None:
    knock = parse_knock(syn, NOW)
    assert knock is not None
    syns.remember(knock)


def test_require_os_admits_spa_over_a_connection_whose_syn_matches(tmp_path: Path) -> None:
    syns = SynMemory()
    processor = _processor(tmp_path, "REQUIRE_OS_REGEX linux\n", syns)
    _seen(syns, pk.tcp_syn(CLIENT, SERVER, 62201, sport=40000))  # Linux's options, TTL 64
    assert isinstance(processor.process(_spa(6), NOW), Accepted)


def test_require_os_refuses_another_stack_udp_and_an_unseen_connection(tmp_path: Path) -> None:
    syns = SynMemory()
    processor = _processor(tmp_path, "REQUIRE_OS Linux:6.x (test)\n", syns)
    windows = pk.tcp_syn(CLIENT, SERVER, 62201, sport=40001, window=64240,
                         options=pk.WINDOWS_OPTIONS, ttl=128)  # fmt: skip
    _seen(syns, windows)
    _seen(syns, pk.tcp_syn(CLIENT, SERVER, 62201, sport=40002))
    other = processor.process(_spa(6, sport=40001), NOW)
    assert isinstance(other, Refused) and other.reason is Reason.OS_MISMATCH
    assert "expected REQUIRE_OS 'Linux:6.x (test)', got no signature matches" in other.detail
    over_udp = processor.process(_spa(17), NOW)
    assert isinstance(over_udp, Refused) and over_udp.reason is Reason.OS_NO_SYN
    assert over_udp.detail.startswith("sent over udp")
    unseen = processor.process(_spa(6, sport=49999), NOW)
    assert isinstance(unseen, Refused) and unseen.reason is Reason.OS_NO_SYN
    assert unseen.detail.startswith("no SYN seen")
    linux = processor.process(_spa(6, sport=40002), NOW)
    assert isinstance(linux, Accepted)


def test_the_recorded_1x_clients_syn_meets_the_custom_signature() -> None:
    """The SYN of the recorded Linux 6.18 client (os-fingerprint.json) is what LINUX_P0F says."""
    recorded = os_fingerprint()["client_syn"]
    database = OsDatabase.from_texts(p0f=[("mine.fp", LINUX_P0F)])
    syn = pk.tcp_syn(CLIENT, SERVER, 22, options=bytes.fromhex(recorded["tcp_options_hex"]))
    knock = parse_knock(syn, NOW)
    assert knock is not None and knock.syn is not None
    assert p0f_raw_signature(knock.syn) == recorded["p0f_v3_raw_sig"]
    assert [g.label for g in database.guesses(knock.syn)] == ["Linux:6.x (test)"]


def test_cmd_regex_limits_command_messages(tmp_path: Path) -> None:
    processor = _processor(tmp_path, "ENABLE_CMD_EXEC Y\nCMD_REGEX ^(uptime|df -h)$\n")
    ok = processor.process(_spa(17, command="uptime"), NOW)
    assert isinstance(ok, RunCommand) and ok.argv == ("uptime",)
    refused = processor.process(_spa(17, sport=40001, command="uptime; id"), NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.COMMAND_REGEX
    assert refused.detail == "'uptime; id'"
