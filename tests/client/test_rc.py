"""rc parsing and mapping (the real client's files are covered in test_rc_fwknopd)."""

from __future__ import annotations

from fwknop_core import EncryptionMode, HmacKey, HmacType, RijndaelKey
from fwknop_tui.wallet.keys import ProfileKeys
from fwknop_tui.wallet.profiles import Profile
from fwknop_tui.wallet.rc import access_stanza, export_stanza, merge_rc, parse_rc, plan_import

RC = """\
# comment
[default]
SPA_SERVER_PORT   62202
HMAC_DIGEST_TYPE  sha512

[box one]
SPA_SERVER        198.18.0.1   ; trailing comment
ACCESS: tcp/22,udp/53
ALLOW_IP          resolve
KEY               pass#word
HMAC_KEY_BASE64   aG1hYy1rZXktMTIzNDU2Nzg5MA==
CLIENT_TIMEOUT    45
WEIRD_VAR         1

[nohost]
ACCESS tcp/1
"""


def test_values_end_at_space_semicolon_or_hash() -> None:
    stanzas = parse_rc(RC)
    assert [s.name for s in stanzas] == ["default", "box one", "nohost"]
    box = stanzas[1].values
    assert box["SPA_SERVER"] == ("198.18.0.1", 7)
    assert box["KEY"][0] == "pass"
    assert box["ACCESS"][0] == "tcp/22,udp/53"


def test_plan_merges_default_accepts_client_timeout_and_warns() -> None:
    plans = plan_import(RC, "rc")
    box, nohost = plans
    assert box.name == "box-one" and nohost.profile is None
    assert box.profile is not None
    assert box.profile.port == 62202 and box.profile.hmac_type is HmacType.SHA512
    assert box.profile.client_timeout == 45 and box.profile.allow_ip == "resolve"
    assert box.profile.key_format == "passphrase"
    assert box.keys["rijndael"] == RijndaelKey(b"pass").to_base64()
    assert box.keys["hmac"] == "aG1hYy1rZXktMTIzNDU2Nzg5MA=="
    assert any("WEIRD_VAR: unknown variable" in w for w in box.warnings)
    assert any("becomes profile 'box-one'" in w for w in box.warnings)
    assert any("no SPA_SERVER" in w for w in nohost.warnings)


def test_export_round_trips_through_import() -> None:
    profile = Profile.from_table(
        "round",
        {
            "host": "198.18.0.1",
            "access": ["tcp/22"],
            "allow_ip": "198.18.0.2",
            "encryption_mode": "ofb",
            "hmac_type": "sha3_256",
            "client_timeout": 30,
            "time_offset": "-2m",
            "random_port": True,
        },
    )
    keys = ProfileKeys(
        RijndaelKey(b"k" * 32, EncryptionMode.OFB), HmacKey(b"h" * 40, HmacType.SHA3_256)
    )
    text, lost = export_stanza(profile, keys)
    assert lost == []
    assert (
        "FW_TIMEOUT                  30\n" in text and "TIME_OFFSET                 -2m\n" in text
    )
    (plan,) = plan_import(text, "exported")
    assert plan.profile == profile
    assert plan.keys == {"rijndael": keys.rijndael.to_base64(), "hmac": keys.hmac.to_base64()}  # type: ignore[union-attr]


def test_export_reports_what_rc_files_cannot_hold() -> None:
    profile = Profile.from_table(
        "p",
        {
            "host": "h.example",
            "server_command": "/bin/true",
            "allow_ip": "ask",
            "verify": "h.example:22",
            "keep_open": 60,
        },
    )
    _text, lost = export_stanza(profile, ProfileKeys(RijndaelKey(b"k" * 16)))
    assert any("server_command" in x for x in lost) and any("ask" in x for x in lost)
    assert any("verify" in x for x in lost) and any("keep_open" in x for x in lost)


def test_merge_replaces_in_place_and_keeps_the_rest() -> None:
    existing = "[default]\nVERBOSE Y\n\n[a]\nSPA_SERVER old\n\n[b]\nSPA_SERVER b\n"
    merged = merge_rc(existing, {"a": "[a]\nSPA_SERVER new\n", "c": "[c]\nSPA_SERVER c\n"})
    assert merged.index("[a]") < merged.index("[b]") < merged.index("[c]")
    assert "old" not in merged and "SPA_SERVER new" in merged and "VERBOSE Y" in merged


def test_access_stanza_for_gpg_names_the_keys() -> None:
    profile = Profile.from_table(
        "g",
        {
            "host": "h",
            "encryption": "gpg",
            "gpg_recipient": "AAAA1111",
            "gpg_signer": "0123456789ABCDEF",
            "hmac_type": "none",
        },
    )
    text = access_stanza(profile, ProfileKeys())
    assert (
        "GPG_DECRYPT_ID              AAAA1111" in text
        and "GPG_REMOTE_ID               89ABCDEF" in text
    )


def test_an_ipv6_nat_host_is_not_exported_as_a_broken_nat_access_line() -> None:
    profile = Profile.from_table(
        "p",
        {"host": "2001:db8::1", "access": ["tcp/22"], "nat_access": "[2001:db8:1::2]:22",
         "server_type": "fwknop-tui"},
    )  # fmt: skip
    text, lost = export_stanza(profile, ProfileKeys(RijndaelKey(b"k" * 16)))
    assert "NAT_ACCESS" not in text and any("IPv6 NAT host" in x for x in lost)
