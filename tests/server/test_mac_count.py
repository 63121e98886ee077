"""One packet, one HMAC computation per candidate stanza at most: capture's screen, the
stanza-by-stanza path and decryption share what was computed (fwknop_core.HmacVerifier)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from fwknop_server.access import AccessStanza, load_access
from fwknop_server.capture.sources import UdpSource
from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import Accepted, Deferred, Packet, Reason, Refused

from fwknop_core import HmacKey, MacMatch, RijndaelKey, SpaMessage, build_packet
from tests.helpers.maccount import counting_macs
from tests.helpers.wait import wait_for

NOW = 1_795_268_000
KEY = RijndaelKey(b"k" * 32)
HKEYS = [HmacKey(bytes([65 + i]) * 48) for i in range(4)]
SRC = ipaddress.ip_address("127.0.0.1")


def _stanzas(
    tmp_path: Path, keys: list[HmacKey] = HKEYS, extra: dict[int, str] | None = None
) -> tuple[AccessStanza, ...]:
    text = "".join(
        f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {h.to_base64()}\n"
        f"{(extra or {}).get(i, '')}\n"
        for i, h in enumerate(keys)
    )
    path = tmp_path / "access.conf"
    path.write_text(text)
    return load_access([path])


def _packet(hkey: HmacKey, access: str = "tcp/22") -> bytes:
    msg = SpaMessage.access_request("127.0.0.1", access, username="u", now=NOW)
    return build_packet(msg, KEY, hmac_key=hkey).encode()


def _captured(payloads: list[bytes], processor: Processor) -> list[Packet]:
    """``payloads`` through the UDP server on loopback, screened as the daemon has it read."""
    source = UdpSource(0)
    port = source.sock.getsockname()[1]
    packets: list[Packet] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for payload in payloads:
            client.sendto(payload, ("127.0.0.1", port))

        def all_read() -> bool:
            packets.extend(source.read(processor.screen.check))
            return len(packets) == len(payloads)

        wait_for(all_read, interval=0.01)  # loopback delivers at once; bounded all the same
    source.close()
    return packets


@pytest.mark.parametrize("through_capture", [True, False])
def test_a_valid_packet_costs_one_mac_per_stanza_up_to_the_one_that_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_capture: bool
) -> None:
    with counting_macs(monkeypatch) as macs:
        processor = Processor(_stanzas(tmp_path), Settings())
        payload = _packet(HKEYS[2])
        macs.made = 0
        packets = _captured([payload], processor) if through_capture else [Packet(payload, SRC)]
        if through_capture:
            assert isinstance(packets[0].screened, MacMatch)  # capture's screen took it
        decision = processor.process(packets[0], NOW)
        assert isinstance(decision, Accepted) and decision.grant.stanza == 3
        assert macs.made == 3  # stanzas 1 and 2 (no match), 3 (the match): each once


def test_junk_costs_one_mac_per_candidate_stanza(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counting_macs(monkeypatch) as macs:
        processor = Processor(_stanzas(tmp_path), Settings())
        junk = [b"8" + bytes([65 + i]) * 203 for i in range(5)]
        macs.made = 0
        for packet in _captured(junk, processor):
            decision = processor.process(packet, NOW)
            assert isinstance(decision, Refused) and decision.reason is Reason.HMAC_MISMATCH
        assert macs.made == 4 * len(junk)


def test_going_on_after_the_matching_stanza_refused_computes_the_rest_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stanza 2 carries the packet's HMAC key but does not open tcp/22; stanza 4 does, with
    # the same key: the path goes on past stanza 2 and computes 3 and 4, once each
    keys = [*HKEYS[:3], HKEYS[1]]
    with counting_macs(monkeypatch) as macs:
        stanzas = _stanzas(tmp_path, keys, {1: "OPEN_PORTS tcp/80"})
        processor = Processor(stanzas, Settings())
        payload = _packet(HKEYS[1])
        macs.made = 0
        (packet,) = _captured([payload], processor)
        decision = processor.process(packet, NOW)
        assert isinstance(decision, Accepted) and decision.grant.stanza == 4
        assert macs.made == len(stanzas) == 4


def test_a_gnupg_decryption_is_handed_the_match_not_a_key_to_check_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpg_hmac = HmacKey(b"g" * 64)
    path = tmp_path / "access.conf"
    path.write_text(
        f"SOURCE ANY\nGPG_HOME_DIR {tmp_path}\nGPG_ALLOW_NO_PW Y\nGPG_DISABLE_SIG Y\n"
        f"HMAC_KEY_BASE64 {gpg_hmac.to_base64()}\n"
    )
    with counting_macs(monkeypatch) as macs:
        processor = Processor(load_access([path]), Settings())
        body = b"8" + b"Q" * 600
        payload = body + gpg_hmac.mac(b"hQ", body)
        macs.made = 0
        (packet,) = _captured([payload], processor)
        decision = processor.process(packet, NOW)
        assert isinstance(decision, Deferred)  # the decryption runs off the packet path
        verified = decision.job.verified
        assert isinstance(verified, MacMatch) and verified.key == gpg_hmac
        assert macs.made == 1
