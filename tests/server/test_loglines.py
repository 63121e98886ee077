"""fwknopd's wording for each refusal, and our verdict line after it (``loglines.py``).

The end-to-end comparison with the real fwknopd is ``test_log_wording.py``;
these pin the lines it cannot provoke side by side (an expired stanza, which
fwknopd reports only once; DESTINATION; NAT; our own reasons) and the gates:
``-v -v``'s dump and the fwknopd lines that only ``-v -v`` shows.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from pathlib import Path

import pytest
from fwknop_server.access import load_access
from fwknop_server.loglines import TRACE, granted_lines, refusal_lines
from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import Packet, Reason, Refused

from fwknop_core import RijndaelKey, SpaMessage, build_packet, open_packet

SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
PACKET = Packet(b"A" * 200, SRC, DST, 17, 40000, 62201)


def _text(lines: list[tuple[int, str]]) -> list[str]:
    return [line for _level, line in lines]


def test_each_stanza_says_why_in_fwknopds_words_then_the_verdict_names_the_source() -> None:
    refused = Refused(
        Reason.NAT,
        "NAT access msg",
        stanza=3,
        attempts=(
            (1, Reason.DESTINATION, "destination 198.18.0.1"),
            (2, Reason.EXPIRED_STANZA, ""),
            (3, Reason.NAT, "NAT access msg"),
        ),
    )
    assert _text(refusal_lines(refused, PACKET)) == [
        "(stanza #1) SPA packet (198.18.0.2 -> 198.18.0.1) filtered by SOURCE and/or "
        "DESTINATION criteria",
        "(stanza #2) SPA Packet from IP: 198.18.0.2 received with access source match",
        "[198.18.0.2] (stanza #2) Access stanza has expired",
        "(stanza #3) SPA Packet from IP: 198.18.0.2 received with access source match",
        "(stanza #3) SPA packet from 198.18.0.2 requested NAT access, but is not enabled/supported",
        "refused SPA packet from 198.18.0.2 udp/62201 (stanza #3): NAT access requested but "
        "not enabled: NAT access msg",
    ]


def test_our_own_reasons_keep_our_words_in_fwknopds_frame() -> None:
    refused = Refused(
        Reason.IPV6_ALLOW,
        "2001:db8::2",
        stanza=1,
        attempts=((1, Reason.IPV6_ALLOW, "2001:db8::2"),),
    )
    assert _text(refusal_lines(refused, PACKET))[1:] == [
        "[198.18.0.2] (stanza #1) IPv6 grants are not supported by this firewall backend: "
        "2001:db8::2",
        "refused SPA packet from 198.18.0.2 udp/62201 (stanza #1): IPv6 grants are not "
        "supported by this firewall backend: 2001:db8::2",
    ]
    short = refusal_lines(Refused(Reason.TOO_SHORT, silent=True), PACKET)
    assert short == [
        (
            logging.INFO,
            "refused SPA packet from 198.18.0.2 udp/62201: packet shorter than 140 bytes",
        )
    ]


def test_a_gpg_sized_packet_names_fkos_encryption_type() -> None:
    gpg = PACKET._replace(payload=b"h" * 500)
    refused = Refused(Reason.NO_DECRYPTION, "GnuPG", 1, ((1, Reason.NO_DECRYPTION, "GnuPG"),))
    assert _text(refusal_lines(refused, gpg))[1] == (
        "[198.18.0.2] (stanza #1) No stanza encryption mode match for encryption type: 2."
    )


def test_junk_gets_fwknopds_line_only_with_v_v() -> None:
    refused = Refused(Reason.NOT_SPA)
    assert _text(refusal_lines(refused, PACKET)) == [
        "refused SPA packet from 198.18.0.2 udp/62201: "
        "data is not an SPA message (characters outside base64)"
    ]
    assert refusal_lines(refused, PACKET, trace=True)[0] == (
        TRACE,
        "[198.18.0.2] preprocess_spa_data() returned error 4098: 'Data is not an SPA message' "
        "for incoming packet.",
    )


def test_the_packet_dump_is_for_v_v_only_and_never_shows_a_server_password() -> None:
    key = RijndaelKey(b"k" * 32)
    msg = SpaMessage.access_request("198.18.0.2", "tcp/22", username="alice", now=1_795_268_000)
    msg = dataclasses.replace(msg, server_auth="crypt,hunter2")
    wire = build_packet(msg, key)
    opened = open_packet(wire.encode(), key, now=1_795_268_000)
    packet = PACKET._replace(payload=wire.encode())
    attempts = ((1, Reason.PORTS, "tcp/22"),)
    quiet = granted_lines(packet, attempts, 2, opened)
    assert all(level != TRACE for level, _ in quiet)
    loud = granted_lines(packet, attempts, 2, opened, trace=True)
    dumps = [line for level, line in loud if line.startswith("[198.18.0.2] (stanza #")
             and "SPA Decode" in line]  # fmt: skip
    assert len(dumps) == 2  # the stanza that refused after decrypting, and the one that took it
    assert (
        "       Username: alice\n" in dumps[0] and "Message String: 198.18.0.2,tcp/22" in dumps[0]
    )
    assert "hunter2" not in "".join(line for _, line in loud)
    assert "    Server Auth: <hidden>" in dumps[0]
    assert _text(loud)[-2] == "SPA Packet: '" + wire + "'"


def test_data_that_does_not_decrypt_gets_fkos_error_as_fwknopd_logs_it(tmp_path: Path) -> None:
    """The real fwknopd, for 200 'A's and a stanza without HMAC (seen running it with -C 1)."""
    access = tmp_path / "access.conf"
    access.write_text("SOURCE ANY\nKEY fwknoptest\n")
    processor = Processor(load_access([access]), Settings())
    decision = processor.process(PACKET, now=1_795_268_000)
    assert isinstance(decision, Refused)
    assert _text(refusal_lines(decision, PACKET))[1] == (
        "[198.18.0.2] (stanza #1) Error creating fko context: Args contain invalid data: "
        "FKO_ERROR_INVALID_DATA_ENCRYPT_CIPHERLEN_VALIDFAIL"
    )


def test_the_packet_text_of_v_v_never_breaks_a_log_line() -> None:
    http = PACKET._replace(payload=b"GET /" + b"A" * 200 + b" HTTP/1.1\r\nUser-Agent: x\r\n\r\n")
    refused = Refused(Reason.HMAC_MISMATCH, stanza=1, attempts=((1, Reason.HMAC_MISMATCH, ""),))
    lines = _text(refusal_lines(refused, http, trace=True))
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert lines[1].endswith("HTTP/1.1\\r\\nUser-Agent: x\\r\\n\\r\\n'")


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.name)
def test_every_reason_can_be_logged_each_way(reason: Reason) -> None:
    """A wording naming a field the log lines do not fill would raise for a packet."""
    refused = Refused(reason, "some detail", 2, ((2, reason, "some detail"),))
    lines = _text(refusal_lines(refused, PACKET, trace=True))
    assert lines[-1].startswith("refused SPA packet from 198.18.0.2 udp/62201 (stanza #2): ")
    assert all("{" not in line for line in lines)
    assert any("198.18.0.2" in line for line in lines[:-1])  # the stanza's line names it
