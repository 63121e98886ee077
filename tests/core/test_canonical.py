"""A packet opens only in the one form its sender wrote: no re-encoding of it is a new packet.

Without an HMAC nothing authenticates the wire text, so a lenient decoder
(libfko's: stop at ``=``, drop a dangling character, ignore unused bits and
the ``Salted__`` bytes, strip padding only when it looks right) lets an
attacker send a captured packet again as different text; fwknopd's replay
digest, taken over the text, calls it new. The core refuses every such text
(``NOT_CANONICAL``), and names each packet for the replay cache by the
digest of its message too, which no re-framing changes.
"""

from __future__ import annotations

import binascii
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fwknop_core import (
    EncryptionMode,
    GpgDecryption,
    HmacKey,
    InvalidPacket,
    MessageType,
    RejectReason,
    RijndaelKey,
    SpaMessage,
    b64s_encode,
    build_packet,
    build_packet_from_parts,
    open_packet,
    replay_digest,
)
from fwknop_core._b64 import b64s_decode_strict
from fwknop_core.gpg import GnupgBackend
from tests.core.test_properties import SETTINGS, Keys, keysets, messages
from tests.helpers.gpghome import GpgHomes
from tests.helpers.variants import (
    ALPHABET,
    GPG_PREFIX,
    RIJNDAEL_PREFIX,
    gpg_reframings,
    reencodings,
    same_bytes,
    truncated_padding,
)
from tests.helpers.vectors import hmac_key, rijndael_key, vectors

KEY = RijndaelKey(b"k" * 32)
NOW = 1_795_268_000
SALT = b"saltsalt"


def _message(user: str) -> SpaMessage:
    return SpaMessage(
        random_value="1234567890123456", username=user, timestamp=NOW,
        message_type=MessageType.ACCESS, message="0.0.0.0,tcp/22",
    )  # fmt: skip


def _packet(length_mod_4: int, *, full_padding: bool = False, key: RijndaelKey = KEY) -> str:
    """A packet without HMAC whose prefixed text has this length mod 4."""
    for n in range(1, 49):
        message = _message("u" * n)
        plain_len = len(message.encode()) + 1 + 43
        wire = build_packet_from_parts(message, key, salt=SALT)
        if (len(RIJNDAEL_PREFIX + wire) % 4 == length_mod_4
                and (plain_len % 16 == 0) == full_padding):  # fmt: skip
            return wire
    raise AssertionError("no such username length")


# -- the decoder ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"QUJD=", "after the data"),
        (b"QUJD==", "after the data"),
        (b"QUI=", "after the data"),
        (b"QUI=AAAA", "after the data"),
        (b"QUJDR", "dangling"),
        (b"QUJ", "unused bits"),  # "AB" is QUI: J sets a bit past the last byte
        (b"QR", "unused bits"),
        (b"QUJ!", "outside the base64 alphabet"),
    ],
)
def test_the_strict_decoder_takes_only_what_the_encoder_writes(text: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        b64s_decode_strict(text)


@given(st.binary(max_size=300))
def test_the_strict_decoder_takes_back_everything_the_encoder_writes(data: bytes) -> None:
    assert b64s_decode_strict(b64s_encode(data).encode()) == data


@given(st.binary(min_size=1, max_size=64), st.sampled_from(ALPHABET))
def test_the_strict_decoder_takes_a_last_character_only_where_the_encoder_writes_it(
    data: bytes, last: str
) -> None:
    text = b64s_encode(data).encode()
    changed = text[:-1] + last.encode()
    try:
        decoded = b64s_decode_strict(changed)
    except ValueError as refused:
        assert "unused bits" in str(refused)
        assert b64s_encode(binascii.a2b_base64(changed + b"=" * (-len(changed) % 4))) != changed
    else:
        assert b64s_encode(decoded).encode() == changed


# -- Rijndael -----------------------------------------------------------------------


@pytest.mark.parametrize("length_mod_4", [0, 2, 3])
def test_every_reencoding_of_a_rijndael_packet_is_refused(length_mod_4: int) -> None:
    wire = _packet(length_mod_4)
    assert open_packet(wire, KEY).message.random_value == "1234567890123456"
    variants = reencodings(wire, RIJNDAEL_PREFIX)
    assert ("dangling" in variants) == (length_mod_4 == 0)
    for name, variant in variants.items():
        if name != "header":  # the header variant changes the (unchecked) Salted__ bytes
            assert same_bytes(variant, wire, RIJNDAEL_PREFIX), name
        with pytest.raises(InvalidPacket) as info:
            open_packet(variant, KEY)
        assert info.value.reason is RejectReason.NOT_CANONICAL, name


def test_a_rijndael_packet_without_its_padding_block_is_refused() -> None:
    wire = _packet(0, full_padding=True)
    short = truncated_padding(wire)
    assert len(short) < len(wire) and len(short) >= 140
    with pytest.raises(InvalidPacket) as info:
        open_packet(short, KEY)
    assert info.value.reason is RejectReason.NOT_CANONICAL
    assert "padding" in str(info.value)


def test_a_wrong_key_is_still_a_decrypt_failure_not_a_padding_error() -> None:
    wire = _packet(3)
    with pytest.raises(InvalidPacket) as info:
        open_packet(wire, RijndaelKey(b"o" * 32))
    assert info.value.reason is RejectReason.DECRYPT_FAILED


@st.composite
def reencoded(draw: st.DrawFn, wire: str, prefix: str) -> str:
    """Any other text that a lenient decoder reads as the same bytes (header bits aside)."""
    variant = wire
    full = prefix + wire
    changed = False
    slack = {2: 4, 3: 2}.get(len(full) % 4, 0)
    if slack and draw(st.booleans()):
        last = ALPHABET.index(wire[-1])
        low = draw(st.integers(1, (1 << slack) - 1))
        variant = variant[:-1] + ALPHABET[last ^ low]
        changed = True
    if prefix == RIJNDAEL_PREFIX and draw(st.booleans()):
        first = ALPHABET.index(wire[0])
        variant = ALPHABET[first ^ (draw(st.integers(1, 15)) << 2)] + variant[1:]
        changed = True
    if len(full) % 4 == 0 and draw(st.booleans()):
        variant += draw(st.sampled_from(ALPHABET))
        changed = True
    if draw(st.booleans()) or not changed:
        variant += "=" + draw(st.text(ALPHABET + "=", max_size=8))
    return variant


@SETTINGS
@given(data=st.data(), msg=messages(), keys=keysets())
def test_no_reencoding_of_any_packet_opens(
    data: st.DataObject, msg: SpaMessage, keys: Keys
) -> None:
    try:
        wire = build_packet(msg, keys.key, hmac_key=keys.hmac)
    except ValueError:
        assume(False)
        raise
    variant = data.draw(reencoded(wire, RIJNDAEL_PREFIX))
    assert variant != wire
    if variant[0] == wire[0]:
        assert same_bytes(variant, wire, RIJNDAEL_PREFIX)
    with pytest.raises(InvalidPacket) as info:
        open_packet(variant, keys.key, hmac_key=keys.hmac)
    expected = RejectReason.HMAC_MISMATCH if keys.hmac else RejectReason.NOT_CANONICAL
    if len(variant) < 400:  # longer: refused as too long for Rijndael before it is decoded
        assert info.value.reason is expected


@pytest.mark.parametrize("case", [c for c in vectors() if c["keys"]["encryption"] == "rijndael"],
                         ids=lambda c: c["id"])  # fmt: skip
def test_every_real_client_packet_is_canonical_and_keeps_fwknopds_digest(
    case: dict[str, Any],
) -> None:
    opened = open_packet(
        case["spa_packet"], rijndael_key(case["keys"]), hmac_key=hmac_key(case["keys"])
    )
    wire_digest, message_digest = opened.replay_digests
    # fwknopd's digest.cache holds the SHA-256 of the text as received
    assert wire_digest == replay_digest(case["spa_packet"])
    assert message_digest == replay_digest(f"{opened.encoded}:{opened.digest}")
    assert message_digest != wire_digest


def test_the_message_digest_is_the_same_for_every_encryption_of_one_message() -> None:
    message = _message("alice")
    first = open_packet(build_packet_from_parts(message, KEY, salt=b"a" * 8), KEY)
    second = open_packet(
        build_packet_from_parts(message, KEY, salt=b"b" * 8, hmac_key=HmacKey(b"h" * 64)),
        KEY, hmac_key=HmacKey(b"h" * 64),
    )  # fmt: skip
    assert first.replay_digests[0] != second.replay_digests[0]
    assert first.replay_digests[1] == second.replay_digests[1]
    other = open_packet(build_packet_from_parts(_message("bob"), KEY, salt=b"a" * 8), KEY)
    assert other.replay_digests[1] != first.replay_digests[1]


@pytest.mark.parametrize("mode", [m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC])
def test_strict_padding_takes_every_mode(mode: EncryptionMode) -> None:
    key = RijndaelKey(b"k" * 16, mode)
    for length_mod_4, full in ((0, True), (3, False), (2, False)):
        wire = _packet(length_mod_4, full_padding=full, key=key)
        assert open_packet(wire, key).message.username.startswith("u")
        if full:
            with pytest.raises(InvalidPacket) as info:
                open_packet(truncated_padding(wire), key)
            assert info.value.reason is RejectReason.NOT_CANONICAL


# -- GnuPG --------------------------------------------------------------------------

GPG_VECTORS = [c for c in vectors() if c["keys"]["encryption"] == "gpg"]


@pytest.mark.gpg
@pytest.mark.parametrize("case", GPG_VECTORS, ids=lambda c: c["id"])
def test_every_reencoding_of_a_gnupg_packet_is_refused(
    case: dict[str, Any], gpg_homes: GpgHomes
) -> None:
    key = GpgDecryption(GnupgBackend(str(gpg_homes.server)))
    hkey = hmac_key(case["keys"])
    wire = case["spa_packet"]
    body = wire if hkey is None else wire[: -hkey.mac_length]
    original = open_packet(wire, key, hmac_key=hkey)
    assert original.replay_digests[0] == replay_digest(wire)
    for name, variant_body in reencodings(body, GPG_PREFIX).items():
        assert same_bytes(variant_body, body, GPG_PREFIX), name
        variant = variant_body + (wire[len(body) :])
        with pytest.raises(InvalidPacket) as info:
            open_packet(variant, key, hmac_key=hkey)
        expected = RejectReason.NOT_CANONICAL if hkey is None else RejectReason.HMAC_MISMATCH
        assert info.value.reason is expected, name


@pytest.mark.gpg
def test_an_openpgp_reframing_opens_but_keeps_its_message_digest(gpg_homes: GpgHomes) -> None:
    case = next(c for c in GPG_VECTORS if c["id"] == "gpg-signed-nohmac")
    key = GpgDecryption(GnupgBackend(str(gpg_homes.server)))
    original = open_packet(case["spa_packet"], key)
    for name, variant in gpg_reframings(case["spa_packet"]).items():
        # GnuPG itself takes these: the text is canonical base64 of other bytes
        opened = open_packet(variant, key)
        assert opened.message == original.message, name
        assert opened.replay_digests[0] != original.replay_digests[0], name
        assert opened.replay_digests[1] == original.replay_digests[1], name
