"""Whatever one packet makes raise is a counted refusal, logged at the rate as one line.

Before: an exception in the pipeline was logged with its traceback for every
packet (a packet that can raise can be sent a thousand times a second), one
raised while acting on a decision (the firewall, the command runner) ended
its whole batch, and one in a GnuPG or NAT callback reached asyncio's
"Exception in callback" traceback. Now each is caught at the packet
boundary: counted as ``internal_error``, logged as one line naming the
exception's type and where it was raised (never its text: it may quote the
packet or a key), at most ``burst`` lines per window; the next packet is
decided as usual.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from pathlib import Path

import pytest
from fwknop_server import processor as processor_module
from fwknop_server.capture.sources import UdpSource
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.vocab import Packet

from fwknop_core import HmacKey, MessageType, RijndaelKey, SpaMessage, build_packet
from tests.helpers.wait import wait_for

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
NOW = 1_795_268_000
SRC = ipaddress.ip_address("198.18.0.2")
STANZA = f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
SECRET_WORDS = "the exception's text, which may quote a key"


def _packet(i: int, port: int = 22) -> Packet:
    message = SpaMessage(
        random_value=f"{i:016d}", username="u", timestamp=NOW,
        message_type=MessageType.ACCESS, message=f"198.18.0.{i % 200 + 10},tcp/{port}",
    )  # fmt: skip
    wire = build_packet(message, KEY, hmac_key=HKEY).encode()
    return Packet(wire, SRC, None, 17, 40000, 62201)


def _daemon(tmp_path: Path) -> Daemon:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    access = tmp_path / "access.conf"
    access.write_text(STANZA)
    options = Options(config_file=conf, access_paths=(access,))
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall, clock=lambda: NOW)


def _raise_for_port(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """The pipeline's policy step raises, unexpectedly, for packets asking for ``port``."""
    policy = processor_module.Processor._policy

    def broken(self: processor_module.Processor, stanza, opened, *args, **kw):  # type: ignore[no-untyped-def]
        if opened.message.message.endswith(f"tcp/{port}"):
            raise LookupError(SECRET_WORDS)
        return policy(self, stanza, opened, *args, **kw)

    monkeypatch.setattr(processor_module.Processor, "_policy", broken)


def _internal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for r in caplog.records if "internal error" in (m := r.getMessage())]


def _run(daemon: Daemon, body) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        body()

    asyncio.run(run())


def test_an_exception_in_the_pipeline_is_one_counted_line_and_the_next_packet_is_granted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    _raise_for_port(monkeypatch, 2222)
    with caplog.at_level(logging.DEBUG, "fwknop_server"):
        _run(daemon, lambda: daemon.dispatch.handle_all([_packet(1, 2222), _packet(2)], NOW))
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert daemon.refusals.counts["internal_error"] == 1
    assert daemon.refusals.counts["granted"] == 1
    assert (ipaddress.ip_address("198.18.0.12"), "tcp", 22) in daemon.firewall.open
    lines = _internal_lines(caplog)
    assert len(lines) == 1
    assert lines[0].startswith("refused SPA packet from 198.18.0.2 udp/62201: internal error")
    assert "LookupError in broken (test_packet_boundary.py:" in lines[0]
    assert SECRET_WORDS not in caplog.text


def test_a_thousand_such_packets_are_counted_and_logged_at_the_refusal_rate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    _raise_for_port(monkeypatch, 2222)
    bad = [_packet(i, 2222) for i in range(1000)]

    def body() -> None:
        daemon.dispatch.handle_all(bad, NOW)
        for i in range(20):  # -C's path, one by one
            daemon.dispatch.handle(_packet(2000 + i, 2222), NOW)
        daemon.dispatch.handle(_packet(5000), NOW)

    with caplog.at_level(logging.DEBUG, "fwknop_server"):
        _run(daemon, body)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert daemon.refusals.counts["internal_error"] == 1020
    assert len(_internal_lines(caplog)) == daemon.refusals.burst
    assert daemon.refusals.counts["granted"] == 1


def test_an_exception_while_acting_on_a_decision_stops_that_packet_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    grant = daemon.firewall.grant

    def broken_grant(g, now):  # type: ignore[no-untyped-def]
        if g.source == ipaddress.ip_address("198.18.0.11"):
            raise ZeroDivisionError(SECRET_WORDS)  # not a FirewallError: a bug
        return grant(g, now)

    monkeypatch.setattr(daemon.firewall, "grant", broken_grant)
    with caplog.at_level(logging.DEBUG, "fwknop_server"):
        _run(daemon, lambda: daemon.dispatch.handle_all([_packet(1), _packet(2)], NOW))
    assert daemon.refusals.counts["internal_error"] == 1
    assert (ipaddress.ip_address("198.18.0.12"), "tcp", 22) in daemon.firewall.open
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert len(_internal_lines(caplog)) == 1
    assert SECRET_WORDS not in caplog.text


def test_a_frame_capture_cannot_take_apart_is_counted_and_reading_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path)

    class Broken:
        description = "a source that fails once"
        calls = 0

        def read(self, check):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 1:
                raise IndexError(SECRET_WORDS)
            return [_packet(3)]

    source = Broken()
    with caplog.at_level(logging.DEBUG, "fwknop_server"):
        _run(daemon, lambda: [daemon.dispatch.read(source) for _ in range(2)])  # type: ignore[arg-type]
    assert daemon.refusals.counts["internal_error"] == 1
    assert daemon.refusals.counts["granted"] == 1
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    (line,) = _internal_lines(caplog)
    assert line.startswith("refused SPA packet from a captured frame: internal error")
    assert "IndexError in read (test_packet_boundary.py:" in line


def test_a_datagram_that_makes_the_screen_raise_is_counted_and_its_batch_is_decided(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    source = UdpSource(0)
    port = source.sock.getsockname()[1]
    screen = daemon.processor.screen
    check = screen.check

    def broken(data: bytes, src, inner: bool = False):  # type: ignore[no-untyped-def]
        if data == b"poison" * 30:
            raise KeyError(SECRET_WORDS)
        return check(data, src, inner)

    monkeypatch.setattr(screen, "check", broken)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for payload in (_packet(1).payload, b"poison" * 30, _packet(2).payload):
            client.sendto(payload, ("127.0.0.1", port))

        def body() -> None:
            assert wait_for(
                lambda: (
                    daemon.dispatch.read(source) == 0
                    and daemon.refusals.counts.get("granted", 0) == 2
                ),
                interval=0.01,
            ), daemon.refusals.counts

        with caplog.at_level(logging.DEBUG, "fwknop_server"):
            _run(daemon, body)
    source.close()
    assert daemon.refusals.counts["internal_error"] == 1
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    (line,) = _internal_lines(caplog)
    assert "a captured frame" in line and "KeyError in broken" in line
    assert SECRET_WORDS not in caplog.text
