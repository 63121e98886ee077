"""Knock sequences in the daemon: recorded 1.x captures (--pcap-file), grants, replays, limits.

The daemon runs in process on a capture file (the log firewall remembers
what it would open): the knock listener's filter picks the knocks out of
the file, the collector decides at the file's times, grants go to the
firewall driver, refusals to the counters; the replay store and the
KNOCK_LIMIT counts are files in the run directory, so a second daemon on
the same directory is a restart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sqlite3
from pathlib import Path

import pytest
from fwknop_server.config import Overrides
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall.logonly import LogOnly

from fwknop_core import HmacKey, RijndaelKey, SpaMessage, build_packet
from tests.helpers import packets as pk
from tests.helpers.legacy import LEGACY, case

SRC = "198.18.5.1"
KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
KEYS = f"KEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
BASIC = "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: testkey1;\nOPEN_PORTS: tcp/22;\n"


def _capture(tmp_path: Path, *case_ids: str, gap: float = 5.0, name: str = "k.pcap") -> Path:
    """The recorded knocks of these cases one after another (``gap`` s apart), as one capture."""
    out: list[tuple[float, bytes]] = []
    start = 1_700_000_000.0
    for run, case_id in enumerate(case_ids):
        raw = _raw(case(case_id)["pcap"])
        base = raw[0][0]
        for stamp, ip in raw:
            # the next run of a 1.x client uses other source ports: a new SYN, not a retransmission
            out.append((start + (stamp - base), _sport(ip, run)))
        start = out[-1][0] + gap
    return pk.write_pcap(tmp_path / name, out)


def _raw(pcap: str) -> list[tuple[float, bytes]]:
    from fwknop_server.capture.frames import network_layer
    from fwknop_server.capture.libpcap import read_file

    return [
        (stamp, ip)
        for linktype, stamp, frame in read_file(LEGACY / pcap, None)
        if (ip := network_layer(linktype, frame)) is not None
    ]


def _sport(ip: bytes, run: int) -> bytes:
    if not run or ip[9] != 6:
        return ip
    ihl = (ip[0] & 0xF) * 4
    sport = (int.from_bytes(ip[ihl : ihl + 2], "big") + run) % 65536 or 1
    moved = ip[:ihl] + sport.to_bytes(2, "big") + ip[ihl + 2 :]
    return pk.rewrite(
        moved, str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
    )


def _daemon(
    tmp_path: Path, access: str, capture: Path, conf: str = "", *, test: bool = False
) -> Daemon:
    (tmp_path / "fwknopd.conf").write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nP0F_FILE {LEGACY}/pf.os\n{conf}"
    )
    (tmp_path / "access.conf").write_text(access)
    options = Options(
        config_file=tmp_path / "fwknopd.conf",
        access_paths=(tmp_path / "access.conf",),
        overrides=Overrides(values={"PCAP_FILE": str(capture)}),
        test_mode=test,
        exit_after_file=True,  # the grants are checked after the run (fwknopd would go on)
    )
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall, clock=lambda: 1_800_000_000.0)


def _run(daemon: Daemon) -> dict[str, int]:
    assert asyncio.run(daemon.run()) == 0
    return daemon.refusals.counts


def _open(daemon: Daemon) -> set[tuple[str, str, int]]:
    return {(str(src), proto, port) for src, proto, port in daemon.firewall.open}


def test_a_recorded_sequence_in_a_capture_file_opens_its_port(tmp_path: Path) -> None:
    capture = _capture(tmp_path, "enc-basic-root")
    daemon = _daemon(tmp_path, BASIC, capture)
    counts = _run(daemon)
    assert counts == {"knock_granted_encrypted": 1}
    assert _open(daemon) == {(SRC, "tcp", 22)}
    (opening,) = daemon.firewall.open.values()
    assert opening.expires == 1_800_000_000 + 30  # the daemon's time, not the capture's


def test_every_case_of_one_file_each_its_stanza(tmp_path: Path) -> None:
    """Several stanzas, several recorded sequences in one capture: each grant where it belongs."""
    cases = ["enc-key16-tcp2222", "enc-user-bob-offset40000", "enc-user-13chars", "shared-mixed",
             "enc-rotate-proto", "enc-drop-policy", "enc-key24-udp53"]  # fmt: skip
    access = "".join(
        f"SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: {case(c)['key']};\n"
        f"PORT_OFFSET: {case(c)['port_offset']};\nOPEN_PORTS: tcp/80;\nPERMIT_CLIENT_PORTS;\n"
        for c in cases
        if c.startswith("enc")
    ) + ("SOURCE: ANY;\nSHARED_SEQUENCE: tcp/65531, udp/65533, icmp, tcp/65532, udp/65530;\n"
         "OPEN_PORTS: tcp/2200;\n")  # fmt: skip
    daemon = _daemon(tmp_path, access, _capture(tmp_path, *cases))
    counts = _run(daemon)
    assert counts == {"knock_granted_encrypted": 6, "knock_granted_shared": 1}
    assert _open(daemon) == {
        (SRC, "tcp", 80), (SRC, "tcp", 2222), (SRC, "tcp", 443), (SRC, "tcp", 8080),
        (SRC, "tcp", 2200), (SRC, "tcp", 22), (SRC, "udp", 53),
    }  # fmt: skip


def test_a_replayed_sequence_is_refused_even_after_a_restart(tmp_path: Path) -> None:
    capture = _capture(tmp_path, "enc-basic-root", "enc-basic-root")  # the same ciphertext twice
    first = _daemon(tmp_path, BASIC, capture)
    assert _run(first) == {"knock_granted_encrypted": 1, "knock_replay": 1}
    # the same counters, by outcome, for the metrics and --status
    assert first.dispatch.knocks == {"granted_encrypted": 1, "replay": 1}
    once = _capture(tmp_path, "enc-basic-root", name="once.pcap")
    again = _daemon(tmp_path, BASIC, once)  # a new daemon, the same run directory
    assert _run(again) == {"knock_replay": 1}
    assert again.firewall.open == {}
    with sqlite3.connect(tmp_path / "run" / "replay.sqlite") as db:
        (stored,) = db.execute("SELECT count(*) FROM replay").fetchone()
    assert stored == 1  # the sequence's digest, beside (none here) the SPA ones


def test_knock_limit_counts_survive_a_reload_and_a_restart(tmp_path: Path) -> None:
    access = BASIC.replace("testkey1", "fwknoptest") + "KNOCK_LIMIT: 1;\n"
    first = _daemon(tmp_path, access, _capture(tmp_path, "enc-key10-tcp22"))
    assert _run(first) == {"knock_granted_encrypted": 1}
    limits = tmp_path / "run" / "knock_limits.json"
    assert limits.stat().st_mode & 0o777 == 0o600
    # another sequence of that client (a new salt: not a replay) after a restart
    second = _daemon(
        tmp_path, access.replace("fwknoptest", "testkey1"), _capture(tmp_path, "enc-basic-root")
    )
    # the stanza is the same file and line: its count carried over, so the limit is reached
    assert _run(second) == {"knock_knock_limit": 1}


def test_test_mode_decides_and_opens_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path, BASIC, _capture(tmp_path, "enc-basic-root"), test=True)
    with caplog.at_level(logging.INFO, "fwknop_server"):
        counts = _run(daemon)
    assert counts == {"knock_test_mode": 1}
    assert daemon.firewall.open == {}
    assert any("--test mode, not opening" in r.getMessage() for r in caplog.records)


def test_refusals_are_counted_and_logged_with_the_source_and_stanza(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    access = (
        "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: otherip-key;\nOPEN_PORTS: tcp/22;\n"
        "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: testkey1;\nOPEN_PORTS: tcp/22;\n"
        "REQUIRE_USERNAME: alice;\n"
    )
    capture = _capture(tmp_path, "enc-allow-other-ip-port65535", "enc-basic-root")
    daemon = _daemon(tmp_path, access, capture)
    with caplog.at_level(logging.INFO, "fwknop_server"):
        counts = _run(daemon)
    # each sequence: its own stanza refuses it (allow IP, user name); that the other stanza
    # cannot decrypt it is no refusal of its own (1.x logged one for each other stanza)
    assert counts == {"knock_allow_ip_not_source": 1, "knock_username": 1}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert (
        "refused encrypted knock sequence from 198.18.5.1 (stanza #1): allow IP is not the "
        "knock source: asks for 10.1.2.3"
    ) in lines
    assert (
        "refused encrypted knock sequence from 198.18.5.1 (stanza #2): username mismatch: "
        "got 'root'"
    ) in lines
    assert daemon.firewall.open == {}


def test_knocks_and_spa_from_one_capture_file(tmp_path: Path) -> None:
    """SPA packets go to the pipeline, knocks to the collector: one file, one pass."""
    msg = SpaMessage.access_request(SRC, "tcp/2022", username="u", now=1_800_000_000)
    spa = build_packet(msg, KEY, hmac_key=HKEY).encode()
    knocks = _raw(case("enc-basic-root")["pcap"])
    mixed = [*knocks[:10], (knocks[10][0], pk.udp(SRC, "198.18.5.2", 62201, spa)), *knocks[10:]]
    capture = pk.write_pcap(tmp_path / "mixed.pcap", mixed)
    access = (
        BASIC + f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
    )
    daemon = _daemon(tmp_path, access, capture)
    assert _run(daemon) == {"granted": 1, "knock_granted_encrypted": 1}
    assert _open(daemon) == {(SRC, "tcp", 2022), (SRC, "tcp", 22)}


def test_a_reload_keeps_sequences_in_progress_and_applies_new_ports(tmp_path: Path) -> None:
    knocks = _raw(case("enc-basic-root")["pcap"])
    daemon = _daemon(tmp_path, BASIC, _capture(tmp_path, "enc-basic-root"))

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        for stamp, ip in knocks[:20]:
            daemon.knocks.feed(ip, stamp)
        assert daemon.knocks.collector.sources == 1
        (tmp_path / "access.conf").write_text(BASIC + "FW_ACCESS_TIMEOUT: 90;\n")
        daemon.reload()  # a changed stanza starts over ...
        assert daemon.knocks.collector.sources == 1  # (the source's state goes at expiry)
        for stamp, ip in knocks[20:]:
            daemon.knocks.feed(ip, stamp)
        assert daemon.firewall.open == {}
        (tmp_path / "access.conf").write_text(BASIC + "FW_ACCESS_TIMEOUT: 90;\n")
        daemon.reload()  # ... an unchanged one goes on
        for stamp, ip in knocks[:20]:
            daemon.knocks.feed(ip, stamp + 100)
        daemon.reload()
        for stamp, ip in knocks[20:]:
            daemon.knocks.feed(ip, stamp + 100)
        await daemon.driver.drain()

    asyncio.run(run())
    (opening,) = daemon.firewall.open.values()
    assert (opening.source, opening.port, opening.expires) == (
        ipaddress.ip_address(SRC), 22, 1_800_000_000 + 90
    )  # fmt: skip


def test_knocks_no_stanza_can_decrypt_are_one_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    access = "".join(
        f"SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: {key};\nOPEN_PORTS: tcp/22;\n"
        for key in ("wrong-key-1", "wrong-key-2")
    )
    daemon = _daemon(tmp_path, access, _capture(tmp_path, "enc-basic-root"))
    with caplog.at_level(logging.INFO, "fwknop_server"):
        assert _run(daemon) == {"knock_decrypt_failed": 1}
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert line.startswith(
        "refused encrypted knock sequence from 198.18.5.1 (every stanza): sequence decrypt "
        "failed: stanza #1: "
    )
    assert "; stanza #2: " in line and "wrong-key" not in line


def test_require_os_in_an_spa_stanza_asks_the_syn_of_the_packets_connection(
    tmp_path: Path,
) -> None:
    """SPA over TCP: the knock listener keeps the SYN's fingerprint, the stanza asks for it."""
    linux_fp = tmp_path / "linux.fp"
    linux_fp.write_text(
        "[tcp:request]\nlabel = s:unix:Linux:6.x (test)\n"
        "sig = *:64:0:*:mss*44,*:mss,sok,ts,nop,ws:df,id+:0\n"
    )
    server = "198.18.5.2"
    packets: list[tuple[float, bytes]] = []
    windows = {"options": pk.WINDOWS_OPTIONS, "ttl": 128}
    for n, (sport, stack) in enumerate([(40001, {}), (40002, windows)]):
        msg = SpaMessage.access_request(SRC, f"tcp/{2000 + n}", username="u", now=1_800_000_000)
        spa = build_packet(msg, KEY, hmac_key=HKEY).encode()
        syn = pk.tcp_syn(SRC, server, 62201, sport=sport, **stack)  # type: ignore[arg-type]
        data = pk.tcp_data(SRC, server, 62201, spa, sport=sport)
        packets += [(10.0 * n, syn), (10.0 * n + 0.01, data)]
    capture = pk.write_pcap(tmp_path / "spa-tcp.pcap", packets)
    access = f"SOURCE ANY\n{KEYS}REQUIRE_OS_REGEX linux\n"
    conf = f"PCAP_FILTER tcp port 62201\nP0F_FP_FILE {linux_fp}\n"
    daemon = _daemon(tmp_path, access, capture, conf)
    # the SYNs reach SPA capture too: too short for SPA, silently, as fwknopd ignores them
    assert _run(daemon) == {"granted": 1, "os_mismatch": 1, "too_short": 2}
    assert _open(daemon) == {(SRC, "tcp", 2000)}
