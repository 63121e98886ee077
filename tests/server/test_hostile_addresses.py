"""Addresses in a packet never cause a traceback: a counted, rate-limited refusal, or a grant.

Before: an HTTP request with ``X-Forwarded-For: 999.1.1.1`` raised inside the
processor (2,000 requests, 2,000 tracebacks), and an allow IP with a leading
zero (``198.017.0.2``, which the core took) raised when the grant was made.
Now the first is refused as ``forwarded_for``, and the second opens what the
C fwknopd opens, 198.15.0.2 (inet_aton and iptables read ``017`` as octal).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from fwknop_server.access import load_access
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import Accepted, Packet, Reason, Refused
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fwknop_core import HmacKey, MessageType, RijndaelKey, SpaMessage, UsageError, build_packet
from fwknop_core import encode_http_request as http
from tests.core.test_properties import messages

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
NOW = 1_795_268_000
SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
STANZA = f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"


def _wire(allow: str, random: str = "1234567890123456") -> str:
    message = SpaMessage(
        random_value=random, username="u", timestamp=NOW, message_type=MessageType.ACCESS,
        message=f"{allow},tcp/22",
    )  # fmt: skip
    return build_packet(message, KEY, hmac_key=HKEY)


def _with_xff(wire: str, value: bytes) -> bytes:
    return http(wire, host="198.18.0.1").replace(
        b"Connection: close", b"X-Forwarded-For: " + value + b"\r\nConnection: close"
    )


def _processor(tmp_path: Path, settings: Settings) -> Processor:
    path = tmp_path / "access.conf"
    path.write_text(STANZA)
    return Processor(load_access([path]), settings)


def test_an_allow_ip_with_a_leading_zero_opens_what_fwknopd_opens(tmp_path: Path) -> None:
    decision = _processor(tmp_path, Settings()).process(
        Packet(_wire("198.017.0.2").encode(), SRC, DST), NOW
    )
    assert isinstance(decision, Accepted), decision
    assert decision.grant.source == ipaddress.ip_address("198.15.0.2")


def test_any_spelling_of_0_0_0_0_means_the_packets_source_and_obeys_require_source(
    tmp_path: Path,
) -> None:
    # fwknopd compares the text with "0.0.0.0" and opens 0.0.0.0/32 (no one) for "00.0.0.0";
    # we read the address, so REQUIRE_SOURCE_ADDRESS holds however it is spelt
    packet = Packet(_wire("00.0.0.0").encode(), SRC, DST)
    decision = _processor(tmp_path, Settings()).process(packet, NOW)
    assert isinstance(decision, Accepted) and decision.grant.source == SRC
    path = tmp_path / "access.conf"
    path.write_text(STANZA + "REQUIRE_SOURCE_ADDRESS Y\n")
    refused = Processor(load_access([path]), Settings()).process(packet, NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.SOURCE_REQUIRED


@pytest.mark.parametrize("value", [b"999.1.1.1", b"1.2.3", b"abc", b"198.18.0.08", b""])
def test_a_bad_x_forwarded_for_is_refused_by_name(tmp_path: Path, value: bytes) -> None:
    processor = _processor(tmp_path, Settings(http=True, x_forwarded_for=True))
    decision = processor.process(Packet(_with_xff(_wire("0.0.0.0"), value), SRC, DST, 6), NOW)
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.FORWARDED_FOR
    assert decision.reason.key == "forwarded_for"
    assert repr(value.decode()) in decision.detail
    # where X-Forwarded-For is not read, the header does not matter
    plain = _processor(tmp_path, Settings(http=True))
    accepted = plain.process(Packet(_with_xff(_wire("0.0.0.0"), value), SRC, DST, 6), NOW)
    assert isinstance(accepted, Accepted) and accepted.grant.source == SRC


def test_a_leading_zero_x_forwarded_for_opens_what_fwknopd_opens(tmp_path: Path) -> None:
    processor = _processor(tmp_path, Settings(http=True, x_forwarded_for=True))
    request = _with_xff(_wire("0.0.0.0"), b"198.017.0.2")
    decision = processor.process(Packet(request, SRC, DST, 6), NOW)
    assert isinstance(decision, Accepted), decision
    assert decision.grant.source == ipaddress.ip_address("198.15.0.2")


def _daemon(tmp_path: Path) -> Daemon:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nENABLE_SPA_OVER_HTTP Y\n"
        "ENABLE_X_FORWARDED_FOR Y\n"
    )
    access = tmp_path / "access.conf"
    access.write_text(STANZA)
    options = Options(config_file=conf, access_paths=(access,))
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall, clock=lambda: NOW)


def test_two_thousand_bad_requests_are_counted_and_logged_at_the_rate_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = _daemon(tmp_path)
    bad = [
        Packet(_with_xff(_wire("0.0.0.0", f"{i:016d}"), b"999.1.1.1"), SRC, None, 6, 40000, 80)
        for i in range(2000)
    ]
    leading_zero = Packet(_wire("198.017.0.2", "9" * 16).encode(), SRC, None, 17, 40000, 62201)

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        daemon.dispatch.handle_all(bad, NOW)
        for packet in bad[:50]:
            daemon.dispatch.handle(packet, NOW)
        daemon.dispatch.handle(leading_zero, NOW)

    with caplog.at_level(logging.DEBUG, "fwknop_server"):
        asyncio.run(run())
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "internal_error" not in daemon.refusals.counts
    assert daemon.refusals.counts["forwarded_for"] == 2050
    assert daemon.refusals.counts["granted"] == 1
    refused = [m for r in caplog.records if "X-Forwarded-For" in (m := r.getMessage())]
    assert 0 < len(refused) <= daemon.refusals.burst
    assert refused[0] == (
        "refused SPA packet from 198.18.0.2 tcp/80: X-Forwarded-For is not an IPv4 address: "
        "'999.1.1.1'"
    )
    assert (ipaddress.ip_address("198.15.0.2"), "tcp", 22) in daemon.firewall.open


def _spelling(octets: list[int], forms: list[int]) -> str:
    """An IPv4 text inet_aton reads as ``octets``: decimal, or octal with leading zeros."""
    return ".".join(
        str(v) if f == 0 else "0" + oct(v)[2:] if f == 1 else "00" + oct(v)[2:]
        for v, f in zip(octets, forms, strict=True)
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    msg=messages(),
    octets=st.lists(st.integers(0, 255), min_size=4, max_size=4),
    forms=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    xff=st.none() | st.binary(max_size=20),
)
def test_no_message_the_core_takes_makes_the_processor_raise(
    msg: SpaMessage, octets: list[int], forms: list[int], xff: bytes | None, tmp_path: Path
) -> None:
    allow = _spelling(octets, forms)
    assume(len(allow) <= 15)
    message = replace(msg, message=allow + "," + msg.message.partition(",")[2])
    try:
        wire = build_packet(message, KEY, hmac_key=HKEY)
    except UsageError:
        assume(False)
        raise
    data = (
        wire.encode()
        if xff is None
        else _with_xff(wire, xff.replace(b"\r", b"").replace(b"\n", b""))
    )
    processor = _processor(tmp_path, Settings(http=True, x_forwarded_for=True))
    decision = processor.process(Packet(data, SRC, DST, 6), message.timestamp)
    if isinstance(decision, Accepted) and message.allow_address != "0.0.0.0":
        assert str(decision.grant.source) == message.allow_address
