"""Property tests: build -> open round trips and tamper resistance (hypothesis)."""

from __future__ import annotations

import contextlib
import os
import string
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fwknop_core import (
    DigestType,
    EncryptionMode,
    EncryptionType,
    HmacKey,
    HmacType,
    InvalidPacket,
    MessageType,
    RijndaelKey,
    SpaMessage,
    UsageError,
    build_packet,
    hmac_matches,
    open_packet,
)

B64 = string.ascii_letters + string.digits + "+/"
USER_CHARS = string.ascii_letters + string.digits + "._-@ "
RIJNDAEL_MODES = [m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC]
EXAMPLES = int(os.environ.get("FWKNOP_HYPOTHESIS_EXAMPLES", "300"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
spec = st.builds(
    lambda p, n: f"{p}/{n}", st.sampled_from(["tcp", "udp", "icmp"]), st.integers(1, 65535)
)
username = st.text(USER_CHARS, min_size=1, max_size=16)
nat = st.builds(lambda ip, port: f"{ip},{port}", ipv4, st.integers(1, 65535))


@st.composite
def messages(draw: st.DrawFn) -> SpaMessage:
    mtype = draw(st.sampled_from(list(MessageType)))
    fields = dict(
        random_value=draw(st.text(string.digits, min_size=16, max_size=16)),
        username=draw(username),
        timestamp=draw(st.integers(0, 10**12 - 1)),
        message_type=mtype,
        server_auth=draw(st.none() | st.text(string.ascii_letters, min_size=1, max_size=8)),
    )
    ip = draw(ipv4)
    if mtype is MessageType.COMMAND:
        command = draw(
            st.text(string.ascii_letters + string.digits + " /-_.", min_size=1, max_size=40)
        )
        return SpaMessage(message=f"{ip},{command}", **fields)
    count = 1 if mtype.has_nat else draw(st.integers(1, 3))
    timeout = draw(st.integers(0, 65536)) if mtype.has_timeout else 0
    if mtype.has_timeout and timeout == 0:
        fields["server_auth"] = None  # unencodable: see test_message
    specs = draw(st.lists(spec, min_size=count, max_size=count))
    return SpaMessage(
        message=f"{ip}," + ",".join(specs),
        nat_access=draw(nat) if mtype.has_nat else None,
        client_timeout=timeout,
        **fields,
    )


@dataclass(frozen=True)
class Keys:
    key: RijndaelKey
    hmac: HmacKey | None


@st.composite
def keysets(draw: st.DrawFn) -> Keys:
    mode = draw(st.sampled_from(RIJNDAEL_MODES))
    kind = draw(st.sampled_from(["passphrase", "base64"]))
    if kind == "passphrase":
        secret = draw(
            st.text(string.ascii_letters + string.digits, min_size=1, max_size=32)
        ).encode()
    else:
        secret = draw(st.binary(min_size=1, max_size=32))
    hmac_type = (
        None if mode is EncryptionMode.LEGACY else draw(st.none() | st.sampled_from(list(HmacType)))
    )
    hkey = None
    if hmac_type is not None:
        hsecret = draw(st.binary(min_size=1, max_size=128))
        assume(hsecret != secret)
        hkey = HmacKey(hsecret, hmac_type)
    return Keys(RijndaelKey(secret, mode), hkey)


def _build(msg: SpaMessage, keys: Keys, digest: DigestType) -> str:
    try:
        return build_packet(msg, keys.key, hmac_key=keys.hmac, digest_type=digest)
    except UsageError as exc:
        # only the size rule may refuse a valid message: it is outside what fwknopd takes
        assert "characters" in str(exc)
        assume(False)
        raise


@SETTINGS
@given(msg=messages(), keys=keysets(), digest=st.sampled_from(list(DigestType)))
def test_build_then_open_round_trips(msg: SpaMessage, keys: Keys, digest: DigestType) -> None:
    wire = _build(msg, keys, digest)
    assert 140 <= len(wire) < 400
    assert wire[0] in "89+/"
    opened = open_packet(wire, keys.key, hmac_key=keys.hmac)
    assert opened.message == msg
    assert opened.digest_type is digest or {opened.digest_type, digest} in (
        {DigestType.SHA256, DigestType.SHA3_256},
        {DigestType.SHA512, DigestType.SHA3_512},
    )
    assert opened.hmac_type == (keys.hmac.type if keys.hmac else None)


@st.composite
def mutations(draw: st.DrawFn, wire: str) -> str:
    op = draw(st.sampled_from(["flip", "drop", "append", "insert"]))
    i = draw(st.integers(0, len(wire) - 1))
    if op == "flip":
        ch = draw(st.sampled_from(B64).filter(lambda c: c != wire[i]))
        return wire[:i] + ch + wire[i + 1 :]
    if op == "drop":
        return wire[:i] + wire[i + 1 :]
    ch = draw(st.sampled_from(B64 + "=!\x00 \n"))
    return wire + ch if op == "append" else wire[:i] + ch + wire[i:]


@SETTINGS
@given(data=st.data(), msg=messages(), keys=keysets(), digest=st.sampled_from(list(DigestType)))
def test_any_change_to_an_hmac_packet_is_rejected(
    data: st.DataObject, msg: SpaMessage, keys: Keys, digest: DigestType
) -> None:
    assume(keys.hmac is not None)
    wire = _build(msg, keys, digest)
    mutated = data.draw(mutations(wire))
    with pytest.raises(InvalidPacket):
        open_packet(mutated, keys.key, hmac_key=keys.hmac)


@SETTINGS
@given(data=st.data(), msg=messages(), keys=keysets(), digest=st.sampled_from(list(DigestType)))
def test_a_changed_packet_never_opens_even_without_hmac(
    data: st.DataObject, msg: SpaMessage, keys: Keys, digest: DigestType
) -> None:
    # Without an HMAC nothing authenticates the text; the one-text-per-packet rule
    # (test_canonical.py) still refuses base64 slack: unused low bits, text after '='.
    wire = _build(msg, keys, digest)
    mutated = data.draw(mutations(wire))
    with pytest.raises(InvalidPacket):
        open_packet(mutated, keys.key, hmac_key=keys.hmac)


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(junk=st.binary(max_size=1600) | st.text(max_size=1600), keys=keysets())
@example(junk="A" * 200, keys=Keys(RijndaelKey(b"k"), None))
@example(
    junk="+" * 300, keys=Keys(RijndaelKey(b"k", EncryptionMode.CTR), HmacKey(b"h", HmacType.MD5))
)
def test_junk_raises_only_invalid_packet(junk: bytes | str, keys: Keys) -> None:
    with contextlib.suppress(InvalidPacket):
        open_packet(junk, keys.key, hmac_key=keys.hmac)


@SETTINGS
@given(msg=messages(), keys=keysets(), other=keysets(), digest=st.sampled_from(list(DigestType)))
def test_other_keys_do_not_open(
    msg: SpaMessage, keys: Keys, other: Keys, digest: DigestType
) -> None:
    # legacy mode pads short keys with '0' and then works like CBC: b"0" in legacy
    # mode is the CBC key b"0000000000000000", so such a pair is the same key
    same_cipher = {other.key.mode, keys.key.mode} <= {EncryptionMode.CBC, EncryptionMode.LEGACY}
    assume(
        other.key.kdf_secret != keys.key.kdf_secret
        or (other.key.mode is not keys.key.mode and not same_cipher)
    )
    assume(keys.hmac is not None or other.hmac is None)
    wire = _build(msg, keys, digest)
    with pytest.raises(InvalidPacket):
        open_packet(wire, other.key, hmac_key=other.hmac)


@SETTINGS
@given(data=st.data(), msg=messages(), keys=keysets(), other=st.binary(min_size=1, max_size=128))
def test_hmac_matches_exactly_the_packets_made_with_its_key(
    data: st.DataObject, msg: SpaMessage, keys: Keys, other: bytes
) -> None:
    assume(keys.hmac is not None)
    assert keys.hmac is not None
    raw = _build(msg, keys, DigestType.SHA256).encode()
    assert hmac_matches(raw, keys.hmac, EncryptionType.RIJNDAEL)
    assert not hmac_matches(raw, keys.hmac, EncryptionType.GPG)  # the other prefix
    i = data.draw(st.integers(0, len(raw) - 1))
    c = data.draw(st.sampled_from(B64.encode()).filter(lambda b: b != raw[i]))
    changed = raw[:i] + bytes([c]) + raw[i + 1 :]
    assert not hmac_matches(changed, keys.hmac, EncryptionType.RIJNDAEL)
    assume(other != keys.hmac.secret)
    assert not hmac_matches(raw, HmacKey(other, keys.hmac.type), EncryptionType.RIJNDAEL)
    assert not hmac_matches(raw[:20], keys.hmac, EncryptionType.RIJNDAEL)  # too short: no error
