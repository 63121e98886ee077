"""Every negative case the real fwknopd refused is refused here for the same reason.

Each case is opened with the keys of the access.conf stanza fwknopd had, so
the core sees exactly what fwknopd saw. The cases decided by server policy
(ports, usernames, sources, replay, expiry, NAT, commands, GnuPG signers)
carry valid cryptography: the core must open them and hand the server the
very field that policy rejects on; the server's own tests refuse them.
The three client-side refusals are refused by the core's builder.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from fwknop_core import (
    EncryptionMode,
    GpgDecryption,
    HmacKey,
    InvalidPacket,
    MessageType,
    RejectReason,
    RijndaelKey,
    SpaMessage,
    UsageError,
    build_packet,
    check_age,
    open_packet,
    replay_digest,
)
from fwknop_core.gpg import GnupgBackend
from tests.helpers.gpghome import GpgHomes
from tests.helpers.vectors import access_conf_value, negatives, stanza_keys

CORE_REASON = {
    "hmac-tampered": RejectReason.HMAC_MISMATCH,
    "ciphertext-tampered": RejectReason.HMAC_MISMATCH,
    "wrong-hmac-key": RejectReason.HMAC_MISMATCH,
    "wrong-rijndael-key": RejectReason.DECRYPT_FAILED,
    "wrong-key-nohmac": RejectReason.DECRYPT_FAILED,
    "hmac-type-mismatch": RejectReason.HMAC_MISMATCH,
    "enc-mode-mismatch": RejectReason.DECRYPT_FAILED,
    "nohmac-to-hmac-stanza": RejectReason.HMAC_MISMATCH,
    "hmac-to-nohmac-stanza": RejectReason.NON_ASCII,
    "truncated-10": RejectReason.HMAC_MISMATCH,
    "truncated-to-139": RejectReason.TOO_SHORT,
    "too-long-1501": RejectReason.TOO_LONG,
    "garbage-base64-200": RejectReason.HMAC_MISMATCH,
    "non-base64-chars": RejectReason.NOT_BASE64,
    "salted-prefix-readded": RejectReason.PREFIX_STUFFING,
}
STALE = {"too-old": +300, "too-new": -300}  # server clock minus packet timestamp
POLICY = {
    "replay",
    "port-not-open",
    "port-restricted",
    "username-mismatch",
    "source-zero-required",
    "source-not-matched",
    "cmd-not-enabled",
    "nat-not-enabled",
    "stanza-expired",
    "gpg-wrong-remote-id",
}
CLIENT = {"client-legacy-with-hmac", "client-key-too-long", "client-same-key-and-hmac"}
CASES = {c["id"]: c for c in negatives()}


def test_every_negative_case_is_classified() -> None:
    assert len(CASES) == 30
    assert set(CASES) == set(CORE_REASON) | set(STALE) | POLICY | CLIENT


def _open_as_server(case: dict[str, Any], **kwargs: Any) -> Any:
    key, hkey = stanza_keys(case["server"]["access_conf"])
    assert key is not None
    return open_packet(case["sent_packet"], key, hmac_key=hkey, **kwargs)


@pytest.mark.parametrize("case_id", sorted(CORE_REASON))
def test_core_refuses_with_the_reason_fwknopd_logged(case_id: str) -> None:
    case = CASES[case_id]
    with pytest.raises(InvalidPacket) as info:
        _open_as_server(case)
    reason = CORE_REASON[case_id]
    assert info.value.reason is reason
    excerpt = " ".join(case["server"]["log_excerpt"])
    if "nothing logged" in excerpt:
        assert reason in (RejectReason.TOO_SHORT, RejectReason.TOO_LONG)
    else:
        assert reason.fwknop_text in excerpt


@pytest.mark.parametrize("case_id", sorted(STALE))
def test_stale_packets_are_refused_with_the_time_difference(case_id: str) -> None:
    case = CASES[case_id]
    now = case["fields"]["timestamp"] + STALE[case_id]
    opened = _open_as_server(case)  # the crypto is fine; only the age is wrong
    with pytest.raises(InvalidPacket) as info:
        check_age(opened.message, now=now, max_age=120)
    assert info.value.reason is RejectReason.STALE
    logged = re.search(r"too great \((\d+) seconds\)", " ".join(case["server"]["log_excerpt"]))
    assert logged is not None
    assert f"{logged.group(1)} seconds" in str(info.value)
    with pytest.raises(InvalidPacket):
        _open_as_server(case, now=now, max_age=120)
    check_age(opened.message, now=now, max_age=300)  # inside a wider window it is fine


def test_replay_is_the_same_digest_twice() -> None:
    case = CASES["replay"]
    assert case["sent_packet"] == case["original_spa_packet"]
    assert replay_digest(case["sent_packet"]) == replay_digest(case["original_spa_packet"])
    _open_as_server(case)


POLICY_FIELD = {
    "port-not-open": lambda m: [str(a) for a in m.access] == ["tcp/23"],
    "port-restricted": lambda m: "tcp/25" in [str(a) for a in m.access],
    "username-mismatch": lambda m: m.username == "root",
    "source-zero-required": lambda m: m.allow_ip == "0.0.0.0",
    "source-not-matched": lambda m: m.allow_ip == "198.18.0.2",
    "cmd-not-enabled": lambda m: m.message_type is MessageType.COMMAND,
    "nat-not-enabled": lambda m: m.message_type.has_nat and m.nat is not None,
    "stanza-expired": lambda m: m.access,
}


@pytest.mark.parametrize("case_id", sorted(POLICY_FIELD))
def test_policy_cases_open_and_expose_the_field_policy_checks(case_id: str) -> None:
    case = CASES[case_id]
    opened = _open_as_server(case)
    assert POLICY_FIELD[case_id](opened.message)


@pytest.mark.gpg
def test_gpg_signer_case_exposes_the_short_id(gpg_homes: GpgHomes) -> None:
    case = CASES["gpg-wrong-remote-id"]
    conf = case["server"]["access_conf"]
    _, hkey = stanza_keys(conf)
    opened = open_packet(
        case["sent_packet"], GpgDecryption(GnupgBackend(str(gpg_homes.server))), hmac_key=hkey
    )
    assert opened.gpg_signature is not None
    assert opened.gpg_signature.short_id == "67CD0C2C"
    allowed = (access_conf_value(conf, "GPG_REMOTE_ID") or "").split(",")
    assert opened.gpg_signature.short_id not in [a.strip() for a in allowed]


def _msg() -> SpaMessage:
    return SpaMessage.access_request("198.18.0.2", "tcp/22", username="root")


def test_client_refuses_legacy_mode_with_hmac() -> None:
    with pytest.raises(UsageError, match="legacy"):
        build_packet(
            _msg(), RijndaelKey(b"fwknoptest", EncryptionMode.LEGACY), hmac_key=HmacKey(b"x" * 32)
        )


def test_client_refuses_a_33_byte_key() -> None:
    with pytest.raises(UsageError, match=r"1\.\.32"):
        RijndaelKey.from_passphrase("a" * 33)


def test_client_refuses_identical_keys() -> None:
    with pytest.raises(UsageError, match="identical"):
        build_packet(_msg(), RijndaelKey(b"samekey123"), hmac_key=HmacKey(b"samekey123"))
