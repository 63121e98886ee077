"""Keys, key generation and the share text."""

from __future__ import annotations

import base64

import pytest

from fwknop_core import (
    MAX_SERVER_HMAC_KEY,
    EncryptionMode,
    HmacKey,
    HmacType,
    RijndaelKey,
    UsageError,
    decode_key_base64,
    encode_share,
    generate_keys,
    is_share_text,
    parse_share,
)


@pytest.mark.parametrize("kind", list(HmacType))
def test_keygen_works_for_every_hmac_type_without_extra_flags(kind: HmacType) -> None:
    keys = generate_keys(kind)
    assert len(keys.rijndael.secret) == 32
    assert len(keys.hmac.secret) == kind.default_key_length
    assert keys.hmac.type is kind
    lines = keys.as_text().splitlines()
    assert lines[0] == f"KEY_BASE64: {base64.b64encode(keys.rijndael.secret).decode()}"
    assert lines[1] == f"HMAC_KEY_BASE64: {base64.b64encode(keys.hmac.secret).decode()}"


def test_keygen_lengths_match_fwknop() -> None:
    expected = {
        HmacType.MD5: 16,
        HmacType.SHA1: 20,
        HmacType.SHA256: 64,
        HmacType.SHA384: 128,
        HmacType.SHA512: 128,
        HmacType.SHA3_256: 128,
        HmacType.SHA3_512: 72,
    }
    assert {k: k.default_key_length for k in HmacType} == expected
    out = generate_keys(HmacType.SHA256).as_text().splitlines()
    assert len(out[0].split()[1]) == 44 and out[0].endswith("=")
    assert len(out[1].split()[1]) == 88 and out[1].endswith("==")


def test_keygen_uses_the_injected_rng() -> None:
    keys = generate_keys(HmacType.MD5, key_len=16, rng=lambda n: b"\x01" * n)
    assert keys.rijndael.secret == b"\x01" * 16
    assert keys.hmac.secret == b"\x01" * 16
    for bad in ({"key_len": 0}, {"key_len": 33}, {"hmac_key_len": 129}):
        with pytest.raises(UsageError):
            generate_keys(**bad)  # type: ignore[arg-type]


def test_keys_never_show_their_material() -> None:
    keys = generate_keys()
    secret_b64 = keys.rijndael.to_base64()
    for text in (repr(keys), str(keys), repr(keys.rijndael), repr(keys.hmac), f"{keys.hmac}"):
        assert secret_b64 not in text
        assert keys.hmac.to_base64() not in text
        assert "bytes" in text


def test_key_limits_and_formats() -> None:
    assert RijndaelKey.from_base64("AAECAw==").secret == b"\x00\x01\x02\x03"
    assert RijndaelKey.from_base64("AAECAw").secret == b"\x00\x01\x02\x03"
    for bad in ("", "not base64!", "A", "AA===="):
        with pytest.raises(UsageError, match="base64"):
            RijndaelKey.from_base64(bad)
    with pytest.raises(UsageError):
        RijndaelKey(b"")
    with pytest.raises(UsageError):
        HmacKey(b"x" * 137)
    with pytest.raises(UsageError, match="GnuPG"):
        RijndaelKey(b"k", EncryptionMode.ASYMMETRIC)
    with pytest.raises(TypeError):
        RijndaelKey("text")  # type: ignore[arg-type]


def test_type_names_are_case_insensitive() -> None:
    assert HmacType.from_name("SHA3_256") is HmacType.SHA3_256
    assert HmacType.from_name("sha3-512") is HmacType.SHA3_512
    assert EncryptionMode.from_name("Legacy") is EncryptionMode.LEGACY
    with pytest.raises(UsageError, match="choose from"):
        HmacType.from_name("sha224")
    with pytest.raises(UsageError):
        EncryptionMode.from_name("pcbc")


def test_share_text_round_trip() -> None:
    keys = generate_keys()
    text = encode_share(keys.rijndael, keys.hmac)
    assert text == f"KEY_BASE64:{keys.rijndael.to_base64()} HMAC_KEY_BASE64:{keys.hmac.to_base64()}"
    shared = parse_share(text)
    assert shared.rijndael == keys.rijndael
    assert shared.hmac == keys.hmac


def test_share_parse_tolerates_what_people_paste() -> None:
    key, hkey = "kHojL8HJ6vJ9tTBlXMDBjoC7E5GcRYXBUBKG9BW7m9Y=", "I9Qv84POj6Fwpd+//10r0bC14sXV"
    expected = parse_share(f"KEY_BASE64:{key} HMAC_KEY_BASE64:{hkey}")
    for text in (
        f"KEY_BASE64:{key} HMAC_KEY_BASE64:{hkey} ",  # console-qr's trailing space
        f"  key_base64: {key}\n\nhmac_key_base64:  {hkey}\n",  # lower case, spaces, newlines
        f"KEY_BASE64                  {key}\nHMAC_KEY_BASE64             {hkey};\n",  # access.conf
        f'"KEY_BASE64:{key}" "HMAC_KEY_BASE64:{hkey}"',  # quoted
        f"SOURCE ANY\nKEY_BASE64 {key}\nHMAC_DIGEST_TYPE sha256\nHMAC_KEY_BASE64 {hkey}",
    ):
        shared = parse_share(text)
        assert shared.rijndael == expected.rijndael
        assert shared.hmac == expected.hmac


def test_share_parse_plain_keys_and_errors() -> None:
    shared = parse_share("KEY:fwknoptest HMAC_KEY:otherpass")
    assert shared.rijndael is not None and shared.rijndael.secret == b"fwknoptest"
    assert shared.hmac is not None and shared.hmac.secret == b"otherpass"
    assert not shared.rijndael_was_base64
    with pytest.raises(UsageError, match="no KEY"):
        parse_share("hello world")
    with pytest.raises(UsageError, match="two different"):
        parse_share("KEY_BASE64:AAAA KEY_BASE64:BBBB")
    with pytest.raises(UsageError, match="both"):
        parse_share("KEY:abc KEY_BASE64:AAAA")
    with pytest.raises(UsageError, match="HMAC_KEY_BASE64 is not valid base64"):
        parse_share("KEY_BASE64:AAAA HMAC_KEY_BASE64:!!!!")
    with pytest.raises(UsageError):
        encode_share(None, None)


def test_share_items_are_not_read_out_of_a_passphrase() -> None:
    for passphrase in ("my-key-2024", "open -key now", "monkey: banana", "the key door", "Key x"):
        assert not is_share_text(passphrase), passphrase
        with pytest.raises(UsageError, match="no KEY"):
            parse_share(passphrase)  # "open -key now" was read as KEY:now
    for text in ("KEY:abc", "x KEY_BASE64: AAAA", "  KEY_BASE64    AAAA", '"hmac_key:abc"'):
        assert is_share_text(text), text


def test_hmac_keys_from_text_are_the_clients_length_and_a_server_may_verify_longer() -> None:
    """The fwknop client takes 1..128 bytes; fwknopd 2.6.10 verifies with up to 136."""
    long_b64 = base64.b64encode(b"k" * 130).decode()
    for make in (lambda: HmacKey.from_base64(long_b64), lambda: HmacKey.from_passphrase("k" * 130)):
        with pytest.raises(UsageError, match=r"1\.\.128 bytes, not 130"):
            make()
    assert len(HmacKey(decode_key_base64(long_b64, "key")).secret) == 130
    assert len(HmacKey(b"k" * MAX_SERVER_HMAC_KEY).secret) == 136
    with pytest.raises(UsageError, match=r"1\.\.136 bytes, not 137"):
        HmacKey(b"k" * 137)
    assert HmacKey(b"k" * 136).mac(b"data") != HmacKey(b"k" * 128).mac(b"data")  # all of it
