"""Every packet the real fwknop 2.6.10 client made opens to exactly the recorded fields."""

from __future__ import annotations

from typing import Any

import pytest

from fwknop_core import (
    DigestType,
    EncryptionMode,
    EncryptionType,
    GpgDecryption,
    build_packet_from_parts,
    open_packet,
    replay_digest,
)
from fwknop_core.gpg import GnupgBackend
from tests.helpers.gpghome import GpgHomes
from tests.helpers.vectors import CLIENT_GPG_FPR, hmac_key, rijndael_key, stanza_keys, vectors

RIJNDAEL = [c for c in vectors() if c["keys"]["encryption"] == "rijndael"]
GPG = [c for c in vectors() if c["keys"]["encryption"] == "gpg"]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


def _assert_fields(opened: Any, fields: dict[str, Any]) -> None:
    msg = opened.message
    assert msg.random_value == fields["rand_val"]
    assert msg.username == fields["username"]
    assert msg.timestamp == fields["timestamp"]
    assert msg.version == fields["version"]
    assert int(msg.message_type) == fields["message_type"]
    assert msg.message_type.label == fields["message_type_name"]
    assert msg.message == fields["message"]
    assert msg.nat_access == fields["nat_access"]
    assert msg.server_auth == fields["server_auth"]
    assert msg.client_timeout == fields["client_timeout"]
    assert int(opened.digest_type) == fields["digest_type"]
    assert opened.digest_type.label == fields["digest_type_name"]
    assert int(opened.encryption_type) == fields["encryption_type"]
    assert opened.encryption_type.label == fields["encryption_type_name"]
    assert int(opened.encryption_mode) == fields["encryption_mode"]
    assert opened.encryption_mode.label == fields["encryption_mode_name"]
    assert opened.encoded == fields["encoded_data"]
    assert opened.digest == fields["digest"]
    assert opened.hmac == fields.get("hmac")
    hmac_code = 0 if opened.hmac_type is None else int(opened.hmac_type)
    assert hmac_code == fields["hmac_type"]


def test_vector_counts() -> None:
    assert len(RIJNDAEL) + len(GPG) == 61
    assert len(GPG) == 4


@pytest.mark.parametrize("case", RIJNDAEL, ids=_ids(RIJNDAEL))
def test_rijndael_vector_opens_to_recorded_fields(case: dict[str, Any]) -> None:
    opened = open_packet(
        case["spa_packet"], rijndael_key(case["keys"]), hmac_key=hmac_key(case["keys"])
    )
    _assert_fields(opened, case["fields"])
    assert opened.message.encode() == case["fields"]["encoded_data"]


@pytest.mark.parametrize("case", RIJNDAEL, ids=_ids(RIJNDAEL))
def test_rijndael_vector_opens_with_the_servers_stanza_keys(case: dict[str, Any]) -> None:
    key, hkey = stanza_keys(case["server"]["access_conf"])
    assert key is not None
    opened = open_packet(case["server"]["received_spa_data"], key, hmac_key=hkey)
    _assert_fields(opened, case["server"]["decoded_fields"])


@pytest.mark.parametrize("case", RIJNDAEL, ids=_ids(RIJNDAEL))
def test_rijndael_vector_rebuilds_byte_for_byte(case: dict[str, Any]) -> None:
    key, hkey = rijndael_key(case["keys"]), hmac_key(case["keys"])
    opened = open_packet(case["spa_packet"], key, hmac_key=hkey)
    assert opened.salt is not None
    rebuilt = build_packet_from_parts(
        opened.message, key, salt=opened.salt, hmac_key=hkey, digest_type=opened.digest_type
    )
    assert rebuilt == case["spa_packet"]


def test_digest_ambiguity_is_resolved_by_trying_both() -> None:
    by_id = {c["id"]: c for c in RIJNDAEL}
    for vid, kind in (
        ("digest-sha3_256", DigestType.SHA3_256),
        ("digest-sha512", DigestType.SHA512),
        ("digest-sha3_512", DigestType.SHA3_512),
        ("digest-sha256", DigestType.SHA256),
    ):
        case = by_id[vid]
        opened = open_packet(
            case["spa_packet"], rijndael_key(case["keys"]), hmac_key=hmac_key(case["keys"])
        )
        assert opened.digest_type is kind


def test_modes_cover_every_rijndael_mode() -> None:
    modes = {rijndael_key(c["keys"]).mode for c in RIJNDAEL}
    assert modes == {m for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC}


def test_replay_digest_is_sha256_of_the_wire_text() -> None:
    case = RIJNDAEL[0]
    digest = replay_digest(case["spa_packet"])
    assert len(digest) == 43
    assert digest == replay_digest(case["spa_packet"].encode())
    assert digest != replay_digest(case["spa_packet"][:-1])


def test_save_packet_file_holds_the_wire_text() -> None:
    case = next(c for c in RIJNDAEL if c["id"] == "save-packet")
    assert case["saved_packet_file_content"] == case["spa_packet"] + "\n"


@pytest.mark.gpg
@pytest.mark.parametrize("case", GPG, ids=_ids(GPG))
def test_gpg_vector_opens_and_reports_the_signer(case: dict[str, Any], gpg_homes: GpgHomes) -> None:
    backend = GnupgBackend(str(gpg_homes.server))
    opened = open_packet(
        case["spa_packet"], GpgDecryption(backend), hmac_key=hmac_key(case["keys"])
    )
    _assert_fields(opened, case["fields"])
    assert opened.encryption_type is EncryptionType.GPG
    if case["keys"].get("gpg_signer"):
        assert opened.gpg_signature is not None
        assert opened.gpg_signature.fingerprint == CLIENT_GPG_FPR
        assert opened.gpg_signature.short_id == "67CD0C2C"
        assert opened.gpg_signature.trusted
    else:
        assert opened.gpg_signature is None
