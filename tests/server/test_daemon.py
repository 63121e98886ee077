"""The daemon's packet handling: every refusal counted, logged with its source at a bounded rate."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path

import pytest
from fwknop_server.capture.frames import Check
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall import FirewallError, Opening
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.vocab import MUTED, Packet

from fwknop_core import HmacKey, RijndaelKey, SpaMessage, build_packet

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
NOW = 1_795_268_000
SRC = ipaddress.ip_address("198.18.0.2")
OTHER = ipaddress.ip_address("203.0.113.9")


def _daemon(tmp_path: Path, *, test_mode: bool = False) -> Daemon:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    access = tmp_path / "access.conf"
    access.write_text(
        f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
    )
    options = Options(config_file=conf, access_paths=(access,), test_mode=test_mode)
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall, clock=lambda: NOW)


def _handle_all(daemon: Daemon, packets: list[Packet]) -> None:
    """``handle_all`` on a running event loop, as the daemon calls it."""

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        daemon.dispatch.handle_all(packets, NOW)

    asyncio.run(run())


def _valid(port: int) -> Packet:
    msg = SpaMessage.access_request("198.18.0.2", f"tcp/{port}", username="u", now=NOW)
    return Packet(build_packet(msg, KEY, hmac_key=HKEY).encode(), SRC, None, 17, 40000, 62201)


def test_a_flood_batch_is_counted_in_full_and_logged_at_the_rate_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path)
    junk = Packet(b"8" + b"A" * 203, SRC, None, 17, 40000, 62201)
    not_spa = Packet(b"!" * 200, OTHER, None, 17, 40001, 62201)
    short = Packet(b"x", SRC, None, 17, 40000, 62201)
    batch = [junk] * 30 + [not_spa] * 5 + [short] * 7 + [_valid(22)] + [junk] * 970
    with caplog.at_level(logging.INFO, "fwknop_server"):
        _handle_all(daemon, batch)
    counts = daemon.refusals.counts
    assert counts == {"hmac": 1000, "not_spa": 5, "too_short": 7, "granted": 1}
    refused = [m for r in caplog.records if (m := r.getMessage()).startswith("refused SPA")]
    burst = daemon.refusals.burst
    # hmac up to the burst; every not_spa and every too-short one, each under its own rate
    # (fwknopd logs nothing for a packet of the wrong size; we log it as information)
    assert len(refused) == burst + 5 + 7
    assert all(
        m.startswith("refused SPA packet from 198.18.0.2 udp/62201") for m in refused[:burst]
    )
    assert (
        refused[burst : burst + 5]
        == [
            "refused SPA packet from 203.0.113.9 udp/62201: "
            "data is not an SPA message (characters outside base64)"
        ]
        * 5
    )
    short_lines = [r for r in caplog.records if "shorter than 140" in r.getMessage()]
    assert len(short_lines) == 7
    assert {r.levelno for r in short_lines} == {logging.INFO}
    assert short_lines[0].getMessage().startswith("refused SPA packet from 198.18.0.2 udp/62201")
    assert (SRC, "tcp", 22) in daemon.firewall.open


def test_fwknopds_lines_for_a_flood_stay_within_the_rate_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path)
    junk = Packet(b"8" + b"A" * 203, SRC, None, 17, 40000, 62201)
    with caplog.at_level(logging.INFO, "fwknop_server"):
        _handle_all(daemon, [junk] * 500)
    messages = [r.getMessage() for r in caplog.records]
    burst = daemon.refusals.burst
    # one packet, one story: the stanza it reached, why it refused, the verdict
    assert messages[:3] == [
        "(stanza #1) SPA Packet from IP: 198.18.0.2 received with access source match",
        "[198.18.0.2] (stanza #1) Error creating fko context: Args contain invalid data: "
        "FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL",
        "refused SPA packet from 198.18.0.2 udp/62201 (stanza #1): HMAC mismatch",
    ]
    assert len(messages) == 3 * burst


def test_the_packet_limit_counts_candidates_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path)
    daemon.dispatch.packet_limit = 3
    stopped: list[bool] = []
    daemon.stop = lambda: stopped.append(True)  # type: ignore[method-assign]
    junk = Packet(b"8" + b"A" * 203, SRC)
    _handle_all(daemon, [Packet(b"x", SRC), junk, junk, Packet(b"y", SRC)])
    assert not stopped  # too-short packets are not candidates (-C counts what has data)
    with caplog.at_level(logging.INFO, "fwknop_server"):
        _handle_all(daemon, [junk])
    assert stopped == [True]
    assert caplog.messages[-2:] == [  # fwknopd's words
        "* Incoming packet count limit of 3 reached",
        "Packet count limit (3) reached. Exiting...",
    ]
    assert daemon.refusals.counts == {"too_short": 2, "hmac": 3}


class FakeSource:
    """Hands out queued packets with their screen verdict, less the muted ones, as real ones do."""

    description = "fake"

    def __init__(self) -> None:
        self.queue: list[Packet] = []
        self.handed: list[int] = []  # how many packets each read handed over

    def fileno(self) -> int:
        return -1

    def read(self, check: Check | None = None) -> list[Packet]:
        out = []
        for packet in self.queue:
            verdict = None if check is None else check(packet.payload, packet.src)
            if verdict is not MUTED:
                out.append(packet._replace(screened=verdict))
        self.queue = []
        self.handed.append(len(out))
        return out

    def close(self) -> None:
        return None


def test_once_a_refusal_is_past_its_log_rate_capture_counts_its_packets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path)
    source = FakeSource()
    junk = Packet(b"8" + b"A" * 203, SRC, None, 17, 40000, 62201)

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        read = daemon.dispatch.read
        source.queue = [junk] * 25
        assert read(source) == 25  # logged up to the burst, then muted
        source.queue = [junk] * 500 + [_valid(22)] + [junk] * 500
        assert read(source) == 1001  # the junk counted by capture, the knock handled
        daemon.dispatch.unmute()  # a second later: they come through again, refused as before
        source.queue = [junk] * 3
        assert read(source) == 3

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    assert source.handed == [25, 1, 3]  # the muted junk never became the daemon's work
    assert daemon.refusals.counts == {"hmac": 1028, "granted": 1}
    assert (SRC, "tcp", 22) in daemon.firewall.open
    logged = [r for r in caplog.records if r.getMessage().startswith("refused SPA")]
    assert len(logged) == daemon.refusals.burst


@pytest.mark.parametrize("limit", [0, 100])  # 100: -C, where each packet is decided alone
def test_every_packet_read_is_counted_once(tmp_path: Path, limit: int) -> None:
    daemon = _daemon(tmp_path)
    daemon.dispatch.packet_limit = limit
    source = FakeSource()
    junk = Packet(b"8" + b"A" * 203, SRC, None, 17, 40000, 62201)

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        source.queue = [junk] * 25 + [_valid(22)]
        daemon.dispatch.read(source)
        source.queue = [junk] * 30  # muted by capture (without -C): counted all the same
        daemon.dispatch.read(source)

    asyncio.run(run())
    assert daemon.dispatch.packets == 56  # what metrics and --status call packets read


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("PF_ANCHOR_NAME other", "PF_ANCHOR_NAME"),
        ("FIREWD_INPUT_ACCESS ACCEPT, filter, INPUT, 2, FWKNOP_IN, 1", "FIREWD_INPUT_ACCESS"),
        ("IPFW_START_RULE_NUM 20000", "IPFW_START_RULE_NUM"),
        ("ENABLE_IP6TABLES Y", "ENABLE_IP6TABLES"),
    ],
)
def test_a_reload_that_changes_a_backends_start_up_setting_says_it_needs_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str, key: str
) -> None:
    daemon = _daemon(tmp_path)
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(conf.read_text() + line + "\n")
    with caplog.at_level(logging.WARNING, "fwknop_server"):
        daemon.reload()
    assert f"settings changed ({key}): restart fwknopd to apply them" in caplog.text
    assert daemon.config.values[key] == line.split(" ", 1)[1]  # read, kept for the restart


def test_test_mode_says_so_in_fwknopds_words_and_opens_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path, test_mode=True)
    with caplog.at_level(logging.INFO, "fwknop_server"):
        _handle_all(daemon, [_valid(22)])
    assert caplog.messages == [
        "(stanza #1) SPA Packet from IP: 198.18.0.2 received with access source match",
        "[198.18.0.2] (stanza #1) --test mode enabled, skipping firewall manipulation.",
        "SPA packet from 198.18.0.2 (user u, stanza #1): --test mode, not opening tcp/22 for "
        "198.18.0.2",
    ]
    assert not daemon.firewall.open


class _Failing(LogOnly):
    """A backend whose every grant fails (as iptables does when a rule cannot be added)."""

    def __init__(self, *, in_process: bool) -> None:
        super().__init__(flush_at_init=False, flush_at_exit=False)
        self.in_process = in_process  # type: ignore[misc]

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        raise FirewallError("iptables -A FWKNOP_INPUT ...: Resource temporarily unavailable")


@pytest.mark.parametrize("in_process", [True, False])
def test_a_grant_the_firewall_cannot_make_is_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, in_process: bool
) -> None:
    daemon = _daemon(tmp_path)
    daemon.firewall = daemon.driver.firewall = _Failing(in_process=in_process)

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        daemon.dispatch.handle_all([_valid(22)], NOW)
        await daemon.driver.drain()
        await asyncio.sleep(0)  # the failure is counted on the loop, after the thread is done

    with caplog.at_level(logging.ERROR, "fwknop_server"):
        asyncio.run(run())
    assert daemon.refusals.counts.get("firewall_failed") == 1
    assert "firewall: nothing opened for 198.18.0.2 tcp/22: iptables -A" in caplog.text
    assert daemon.firewall.open == {}
