"""A captured packet sent again in any other form is refused, never granted (issue 11, item 1).

Stanzas without an HMAC key, allow IP 0.0.0.0: the packet's source gets
the grant, so an attacker who replays a variant from their own address
would get in. The original is granted once; every base64 re-encoding is
refused as malformed (not canonical), and every variant that is canonical
text of other bytes (OpenPGP re-framing) is refused as a replay: the cache
knows the packet by its message too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwknop_server.access import AccessStanza, load_access
from fwknop_server.gpgpool import settle
from fwknop_server.processor import Processor, Settings
from fwknop_server.replay.sqlite import ReplayCache
from fwknop_server.vocab import Accepted, Packet, Reason, Refused
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fwknop_core import (
    EncryptionMode,
    GpgEncryption,
    RijndaelKey,
    SpaMessage,
    build_packet,
    build_packet_from_parts,
    replay_digest,
)
from fwknop_core.gpg import GnupgBackend
from tests.helpers.gpghome import GpgHomes, build_homes, stop_agents
from tests.helpers.variants import (
    GPG_PREFIX,
    RIJNDAEL_PREFIX,
    gpg_reframings,
    reencodings,
    truncated_padding,
)
from tests.helpers.vectors import CLIENT_GPG_KEY, SERVER_GPG_KEY

SRC = ipaddress.ip_address("198.18.0.2")
ATTACKER = ipaddress.ip_address("198.18.0.66")
DST = ipaddress.ip_address("198.18.0.1")
NOW = 1_795_268_000
KEY = RijndaelKey(b"k" * 32)
EXAMPLES = 200


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgHomes]:
    made = build_homes(tmp_path_factory.mktemp("gnupg"))
    yield made
    stop_agents(made)


def _stanzas(text: str, tmp_path: Path) -> tuple[AccessStanza, ...]:
    path = tmp_path / "access.conf"
    path.write_text(text)
    return load_access([path])


def _message(user: str = "alice", now: int = NOW) -> SpaMessage:
    return SpaMessage.access_request("0.0.0.0", "tcp/22", username=user, now=now)


def _processor(conf: str, tmp_path: Path) -> tuple[Processor, ReplayCache]:
    replay = ReplayCache(None, max_age=120, now=NOW)
    return Processor(_stanzas(conf, tmp_path), Settings(), replay), replay


def _assert_never_granted(processor: Processor, variants: dict[str, str]) -> dict[str, Refused]:
    """Each variant, from the attacker's address: refused; the refusals by name."""
    refusals = {}
    for name, variant in variants.items():
        decision = settle(processor.process(Packet(variant.encode(), ATTACKER, DST), NOW))
        assert isinstance(decision, Refused), (name, decision)
        refusals[name] = decision
    return refusals


def _rijndael_packets() -> dict[str, str]:
    """Packets of every kind a re-encoding needs: text length 0, 2 and 3 mod 4, full padding."""
    found: dict[str, str] = {}
    for n in range(1, 40):
        message = _message("u" * n)
        wire = build_packet_from_parts(message, KEY, salt=b"saltsalt")
        padding = "full-padding" if (len(message.encode()) + 44) % 16 == 0 else "padding"
        found.setdefault(f"length-{len(RIJNDAEL_PREFIX + wire) % 4}-{padding}", wire)
    assert {"length-0-full-padding", "length-0-padding", "length-2-padding",
            "length-3-padding"} <= set(found)  # fmt: skip
    return found


RIJNDAEL_PACKETS = _rijndael_packets()


@pytest.mark.parametrize("kind", sorted(RIJNDAEL_PACKETS))
def test_no_variant_of_a_rijndael_packet_is_granted_again(kind: str, tmp_path: Path) -> None:
    wire = RIJNDAEL_PACKETS[kind]
    processor, replay = _processor(f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\n", tmp_path)
    first = settle(processor.process(Packet(wire.encode(), SRC, DST), NOW))
    assert isinstance(first, Accepted)
    assert first.grant.source == SRC
    variants = reencodings(wire, RIJNDAEL_PREFIX)
    if "full-padding" in kind:
        variants["truncated_padding"] = truncated_padding(wire)
    refusals = _assert_never_granted(processor, {**variants, "replay": wire})
    assert refusals.pop("replay").reason is Reason.REPLAY
    for name, refused in refusals.items():
        assert refused.reason is Reason.MALFORMED, name
        assert refused.detail.startswith("not canonical: "), (name, refused.detail)
    # remembered by fwknopd's digest of the text and by the digest of the message
    assert replay.seen(replay_digest(wire))
    assert len(replay) == 2


@pytest.mark.gpg
def test_no_variant_of_a_gnupg_packet_is_granted_again(homes: GpgHomes, tmp_path: Path) -> None:
    conf = (
        f"SOURCE ANY\nGPG_HOME_DIR {homes.server}\nGPG_DECRYPT_ID {SERVER_GPG_KEY}\n"
        f"GPG_ALLOW_NO_PW Y\nGPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}\n"
    )
    processor, _replay = _processor(conf, tmp_path)
    sender = GpgEncryption(GnupgBackend(str(homes.client)), SERVER_GPG_KEY, CLIENT_GPG_KEY)
    wire = build_packet(_message(), sender)
    first = settle(processor.process(Packet(wire.encode(), SRC, DST), NOW))
    assert isinstance(first, Accepted)
    reencoded = _assert_never_granted(processor, reencodings(wire, GPG_PREFIX))
    for name, refused in reencoded.items():
        assert refused.reason is Reason.MALFORMED, name
        assert refused.detail.startswith("not canonical: "), (name, refused.detail)
    # gpg opens these (other canonical text): the message digest knows them
    reframed = _assert_never_granted(processor, gpg_reframings(wire))
    assert {r.reason for r in reframed.values()} == {Reason.REPLAY}


@settings(
    max_examples=EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    user=st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=40),
    mode=st.sampled_from([m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC]),
    secret=st.binary(min_size=1, max_size=32),
    extra=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=6),
)
def test_for_any_packet_no_variant_opens_twice(
    user: str, mode: EncryptionMode, secret: bytes, extra: str, tmp_path: Path
) -> None:
    key = RijndaelKey(secret, mode)
    try:
        wire = build_packet(_message(user), key)
    except ValueError:
        assume(False)
        raise
    conf = f"SOURCE ANY\nKEY_BASE64 {key.to_base64()}\nENCRYPTION_MODE {mode.label}\n"
    processor, _replay = _processor(conf, tmp_path)
    assert isinstance(settle(processor.process(Packet(wire.encode(), SRC, DST), NOW)), Accepted)
    variants = {f"{k}+{extra}": v + extra for k, v in reencodings(wire, RIJNDAEL_PREFIX).items()}
    variants["truncated_padding"] = truncated_padding(wire)
    variants["replay"] = wire
    _assert_never_granted(processor, variants)
