"""One HMAC check for many keys, and an open that trusts it (``HmacVerifier``, ``MacMatch``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fwknop_core import (
    MAX_PACKET,
    MIN_PACKET,
    EncryptionType,
    HmacKey,
    HmacType,
    HmacVerifier,
    InvalidPacket,
    RejectReason,
    RijndaelKey,
    SpaMessage,
    UsageError,
    build_packet,
    open_packet,
    size_problem,
)
from tests.helpers.maccount import Counting, counting_macs

KEY = RijndaelKey(b"k" * 32)
A, B, C = HmacKey(b"a" * 32), HmacKey(b"b" * 48, HmacType.SHA512), HmacKey(b"c" * 20)
NOW = 1_795_268_000


def _wire(hkey: HmacKey) -> bytes:
    msg = SpaMessage.access_request("198.18.0.2", "tcp/22", username="u", now=NOW)
    return build_packet(msg, KEY, hmac_key=hkey).encode()


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Counting]]:
    with counting_macs(monkeypatch) as counter:
        yield counter


def test_the_verifier_says_which_key_made_the_mac() -> None:
    wire = _wire(B)
    verifier = HmacVerifier([A, None, B, C], EncryptionType.RIJNDAEL)
    match = verifier.first_match(wire, 0)
    assert match is not None and (match.index, match.key) == (2, B)
    assert verifier.first_match(wire, 3) is None  # nothing after it made it
    assert HmacVerifier([A, C], EncryptionType.RIJNDAEL).first_match(wire, 0) is None
    assert HmacVerifier([B], EncryptionType.GPG).first_match(wire, 0) is None  # other prefix


def test_each_key_is_computed_once_per_packet_even_when_asked_again(
    counting: type[Counting],
) -> None:
    keys = [HmacKey(b"a" * 32), HmacKey(b"b" * 32), HmacKey(b"a" * 32), HmacKey(b"d" * 32)]
    verifier = HmacVerifier(keys, EncryptionType.RIJNDAEL)
    junk = b"8" + b"A" * 203
    counting.made = 0
    assert verifier.first_match(junk, 0) is None
    assert counting.made == 3  # the repeated key once
    wire = _wire(HmacKey(b"b" * 32))
    counting.made = 0
    first = verifier.first_match(wire, 0)
    assert first is not None and first.index == 1 and counting.made == 2
    # going on after the match: only the places after it, each once
    assert verifier.first_match(wire, 2) is None and counting.made == 4


def test_opening_with_the_match_computes_no_mac(counting: type[Counting]) -> None:
    hkey = HmacKey(b"b" * 32)
    wire = _wire(hkey)
    match = HmacVerifier([hkey], EncryptionType.RIJNDAEL).first_match(wire, 0)
    assert match is not None and counting.made
    counting.made = 0
    opened = open_packet(wire, KEY, verified=match, now=NOW)
    assert counting.made == 0
    assert opened.hmac_type is HmacType.SHA256 and opened.message.access[0].port == 22
    assert opened == open_packet(wire, KEY, hmac_key=hkey, now=NOW)  # the same as checking
    assert counting.made == 1


def test_a_match_is_good_only_for_its_own_data_key_and_prefix() -> None:
    wire = _wire(A)
    match = HmacVerifier([A], EncryptionType.RIJNDAEL).first_match(wire, 0)
    assert match is not None
    other = _wire(A)
    with pytest.raises(UsageError):
        open_packet(other, KEY, verified=match)
    with pytest.raises(UsageError):
        open_packet(wire, KEY, hmac_key=C, verified=match)
    with pytest.raises(TypeError):
        open_packet(wire, KEY, verified="yes")  # type: ignore[arg-type]


def test_the_size_limits_are_one_rule() -> None:
    assert size_problem(MIN_PACKET - 1) is RejectReason.TOO_SHORT
    assert size_problem(MIN_PACKET) is None
    assert size_problem(MAX_PACKET - 1) is None
    assert size_problem(MAX_PACKET) is RejectReason.TOO_LONG
    for n, reason in (
        (MIN_PACKET - 1, RejectReason.TOO_SHORT),
        (MAX_PACKET, RejectReason.TOO_LONG),
    ):
        with pytest.raises(InvalidPacket) as refused:
            open_packet("A" * n, KEY)
        assert refused.value.reason is reason
