"""access.conf as fwknopd reads it (server-config.md §3); problems as file:line, never a key."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest
from fwknop_server.access import expire_date, load_access, parse_networks, parse_ports
from fwknop_server.errors import ConfigError

from fwknop_core import EncryptionMode, HmacType
from tests.helpers.gpghome import GpgHomes
from tests.helpers.vectors import vectors

KEY = "kHojL8HJ6vJ9tTBlXMDBjoC7E5GcRYXBUBKG9BW7m9Y="
HKEY = "I9Qv84POj6Fwpd+//10r0bC14sXVsXJlVrXixStLPCiYt17G9UCviVhc1RNgcNE7NslRu1YQGtfhW4RKvq0v3g=="


def _access(tmp_path: Path, text: str, name: str = "access.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(tmp_path: Path, text: str, **kwargs: object) -> tuple:  # type: ignore[type-arg]
    return load_access([_access(tmp_path, text)], **kwargs)  # type: ignore[arg-type]


def test_stanzas_run_from_source_to_source(tmp_path: Path) -> None:
    stanzas = _load(
        tmp_path,
        "KEY_BASE64 ignored-before-the-first-source\n"
        "SOURCE 198.18.0.0/24\n"
        f"KEY_BASE64 {KEY}\n"
        "OPEN_PORTS tcp/22, udp/53\n"
        "FW_ACCESS_TIMEOUT 45\n"
        "\n"
        "SOURCE: ANY;\n"
        "KEY fwknoptest\n"
        f"HMAC_KEY_BASE64 {HKEY}\n"
        "HMAC_DIGEST_TYPE SHA512\n"
        "ENCRYPTION_MODE ctr\n"
        "REQUIRE_USERNAME alice\n"
        "REQUIRE_SOURCE_ADDRESS Y\n"
        "MAX_FW_TIMEOUT 90\n",
    )
    first, second = stanzas
    assert (first.number, first.line, second.number, second.line) == (1, 2, 2, 7)
    assert first.open_ports == {("tcp", 22), ("udp", 53)}
    assert first.fw_access_timeout == 45 and first.max_fw_timeout == 300
    assert first.key is not None and first.key.to_base64() == KEY and first.hmac_key is None
    assert first.matches_source(ipaddress.ip_address("198.18.0.77"))
    assert not first.matches_source(ipaddress.ip_address("198.18.1.1"))
    assert second.key is not None and second.key.secret == b"fwknoptest"
    assert second.key.mode is EncryptionMode.CTR
    assert second.hmac_key is not None and second.hmac_key.type is HmacType.SHA512
    assert second.require_username == "alice" and second.require_source_address
    assert second.matches_source(ipaddress.ip_address("2001:db8::5"))
    assert second.timeout_for(0) == 30
    assert second.timeout_for(60) == 60
    assert second.timeout_for(5000) == 90  # capped by MAX_FW_TIMEOUT


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("ANY", ["1.2.3.4", "::1"], []),
        ("198.18.0.7/24", ["198.18.0.200"], ["198.18.1.0"]),  # masked, as fwknopd does
        ("10.0.0.0/255.255.0.0", ["10.0.9.9"], ["10.1.0.0"]),
        ("192.0.2.1, 192.0.2.9", ["192.0.2.9"], ["192.0.2.2"]),
        ("2001:db8::/32", ["2001:db8:1::1"], ["2001:db9::1"]),
    ],
)
def test_source_syntax(text: str, inside: list[str], outside: list[str]) -> None:
    nets = parse_networks(text)
    for ip in inside:
        assert any(ipaddress.ip_address(ip) in n for n in nets)
    for ip in outside:
        assert not any(ipaddress.ip_address(ip) in n for n in nets)


@pytest.mark.parametrize("text", ["", "1.2.3", "1.2.3.4/33", "any,", "host.example"])
def test_bad_sources(text: str) -> None:
    with pytest.raises(ValueError, match=r"entry|not ANY"):
        parse_networks(text)


def test_ports_syntax() -> None:
    assert parse_ports("tcp/22,  UDP/53,icmp/8") == {("tcp", 22), ("udp", 53), ("icmp", 8)}
    for bad in ("tcp22", "sctp/1", "tcp/x", "tcp/70000"):
        with pytest.raises(ValueError, match=bad.split("/")[0][:3]):
            parse_ports(bad)


def test_every_problem_named_with_its_line_and_never_the_key(tmp_path: Path) -> None:
    path = _access(
        tmp_path,
        "SOURCE ANY\n"
        "KEY_BASE64 __CHANGEME__\n"
        "HMAC_KEY_BASE64 __CHANGEME__\n"
        "SOURCE 1.2.3.0/99\n"
        f"KEY_BASE64 {KEY}\n"
        "OPEN_PORTS tcp/22,ftp/21\n"
        "SOURCE ANY\n"
        "KEY_BASE64 not*base64\n"
        "SOURCE ANY\n"
        "KEY secretsecret\n"
        "HMAC_KEY secretsecret\n"
        "SOURCE ANY\n"
        "KEY ok-key\n"
        "ENCRYPTION_MODE pcbc\n"
        "FW_ACCESS_TIMEOUT soon\n"
        "SOURCE ANY\n"
        "HMAC_KEY_BASE64 " + HKEY + "\n",
    )
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value).splitlines() == [
        f"{path}:2: KEY_BASE64 is still __CHANGEME__: put a key here (fwknop --key-gen)",
        f"{path}:3: HMAC_KEY_BASE64 is still __CHANGEME__: put a key here (fwknop --key-gen)",
        f"{path}:4: SOURCE: '1.2.3.0/99' is not ANY, an address or a network",
        f"{path}:6: OPEN_PORTS: 'ftp/21' is not proto/port",
        f"{path}:8: KEY_BASE64 is not valid base64",
        f"{path}:11: the HMAC key must not be the same as the encryption key",
        f"{path}:14: ENCRYPTION_MODE 'pcbc' is not CBC, CTR, CFB, OFB, ECB, legacy or Asymmetric",
        f"{path}:15: FW_ACCESS_TIMEOUT must be a number of seconds up to 8388608",
        f"{path}:16: no keys for this stanza: set KEY or KEY_BASE64, or GPG_DECRYPT_PW or "
        "GPG_ALLOW_NO_PW for GnuPG, or CLIENT_PUBLIC_KEY for x25519",
    ]
    assert "secretsecret" not in str(info.value)
    assert KEY not in str(info.value) and HKEY not in str(info.value)


def test_nat_settings_need_nat_in_fwknopd_conf(tmp_path: Path) -> None:
    text = (
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nENABLE_CMD_EXEC Y\n"
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nFORCE_NAT 192.168.1.2 22\n"
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nENABLE_CMD_EXEC N\nFORWARD_ALL N\n"
    )
    path = _access(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value).splitlines() == [
        f"{path}:6: FORCE_NAT needs ENABLE_IPT_FORWARDING or ENABLE_IPT_LOCAL_NAT in fwknopd.conf",
    ]
    assert len(load_access([path], nat_enabled=True)) == 3


def test_no_stanza_at_all(tmp_path: Path) -> None:
    path = _access(tmp_path, "# nothing here\nKEY_BASE64 orphan\n")
    with pytest.raises(ConfigError, match="no access stanza"):
        load_access([path])


def test_warnings_for_unknown_names_and_missing_require_source(tmp_path: Path) -> None:
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\nFLUX_CAPACITOR Y\n")
    warnings: list[str] = []
    load_access([path], warnings=warnings)
    assert warnings == [
        f"{path}:3: ignoring unknown access parameter FLUX_CAPACITOR",
        f"{path}:1: REQUIRE_SOURCE_ADDRESS not enabled for access stanza source: 'ANY'",
    ]


def test_includes(tmp_path: Path) -> None:
    folder = tmp_path / "stanzas.d"
    folder.mkdir()
    (folder / "b.conf").write_text(f"SOURCE 10.0.0.2\nKEY_BASE64 {KEY}\n")
    (folder / "a.conf").write_text(f"SOURCE 10.0.0.1\nKEY_BASE64 {KEY}\n")
    (folder / "skipped.txt").write_text("SOURCE 10.0.0.9\nKEY x\n")
    keys = tmp_path / "keys.conf"
    keys.write_text(f"KEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HKEY}\nOPEN_PORTS tcp/1\n")
    other = _access(tmp_path, f"SOURCE 10.0.0.3\nKEY_BASE64 {KEY}\n", "other.conf")
    main = _access(
        tmp_path,
        f"%include {other}\n%include_folder {folder}\nSOURCE 10.0.0.4\n%include_keys {keys}\n",
    )
    stanzas = load_access([main])
    assert [s.source_text for s in stanzas] == ["10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.4"]
    last = stanzas[-1]
    assert last.hmac_key is not None  # keys came from %include_keys ...
    assert last.open_ports is None  # ... and nothing else did


def test_include_depth_is_limited(tmp_path: Path) -> None:
    for i in range(5):
        _access(tmp_path, f"%include {tmp_path}/n{i + 1}.conf\n", f"n{i}.conf")
    _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n", "n5.conf")
    with pytest.raises(ConfigError, match="nested more than 3 levels"):
        load_access([tmp_path / "n0.conf"])


def test_a_folder_given_directly(tmp_path: Path) -> None:
    _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n", "one.conf")
    assert len(load_access([tmp_path])) == 1


def test_access_expire(tmp_path: Path) -> None:
    old, future, epoch = _load(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nACCESS_EXPIRE 01/01/2020\n"
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nACCESS_EXPIRE 12/31/2099\n"
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nACCESS_EXPIRE_EPOCH 2000000000\n",
    )
    now = time.time()
    assert old.expired(now) and not future.expired(now)
    assert epoch.expires_at == 2_000_000_000
    assert epoch.expired(2_000_000_000) and not epoch.expired(1_999_999_999)


def test_gpg_stanzas(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir()
    unsigned, signed = _load(
        tmp_path,
        f"SOURCE ANY\nGPG_HOME_DIR {home}\nGPG_ALLOW_NO_PW Y\nGPG_DISABLE_SIG Y\n"
        f"SOURCE ANY\nGPG_HOME_DIR {home}\nGPG_DECRYPT_PW pw\nGPG_REMOTE_ID 67CD0C2C, 11111111\n",
    )
    assert unsigned.gpg is not None and not unsigned.gpg.require_sig and unsigned.key is None
    assert signed.gpg is not None and signed.gpg.require_sig
    assert signed.gpg.remote_ids == {"67CD0C2C", "11111111"}
    with pytest.raises(ConfigError, match="set GPG_REMOTE_ID or GPG_FINGERPRINT_ID"):
        _load(tmp_path, f"SOURCE ANY\nGPG_HOME_DIR {home}\nGPG_ALLOW_NO_PW Y\n")
    with pytest.raises(ConfigError, match="is not a directory"):
        _load(tmp_path, "SOURCE ANY\nGPG_HOME_DIR /no/such/dir\nGPG_ALLOW_NO_PW Y\n"
              "GPG_DISABLE_SIG Y\n")  # fmt: skip


def test_the_vectors_access_conf_stanzas_load_unchanged(tmp_path: Path) -> None:
    homes = GpgHomes(tmp_path, tmp_path)  # only needs to be a directory
    loaded, refused = 0, []
    for case in vectors():
        text = case["server"]["access_conf"].replace("GPG_SERVER_HOME", str(homes.server))
        path = _access(tmp_path, text, f"{case['id']}.conf")
        try:
            load_access([path])
        except ConfigError as exc:
            refused.append((case["id"], str(exc)))
        else:
            loaded += 1
    assert refused == []
    assert loaded == 61


def test_max_fw_timeout_is_honoured_over_a_longer_fw_access_timeout(tmp_path: Path) -> None:
    path = tmp_path / "access.conf"
    path.write_text("SOURCE ANY\nKEY fwknoptest\nFW_ACCESS_TIMEOUT 30\nMAX_FW_TIMEOUT 5\n")
    warnings: list[str] = []
    (stanza,) = load_access([path], warnings=warnings)
    assert (
        f"{path}:1: Warning: MAX_FW_TIMEOUT < FW_ACCESS_TIMEOUT, honoring MAX_FW_TIMEOUT for "
        "stanza source: 'ANY' (#1)" in warnings
    )
    # fwknopd 2.6.10 says so, then opens for 30 s; we do what the warning says
    assert stanza.timeout_for(0) == 5


def test_access_expire_dates_are_read_as_fwknopd_reads_them() -> None:
    """M/D/Y of up to 2, 2 and 4 characters, rolled over as mktime does; anything else refused."""

    def midnight(year: int, month: int, day: int) -> float:
        return time.mktime((year, month, day, 0, 0, 0, 0, 0, -1))

    assert expire_date("3/10/01") == midnight(2001, 3, 10)  # a short year is 2000 + it
    assert expire_date("03/10/1999") == midnight(1999, 3, 10)
    assert expire_date("13/10/2030") == midnight(2031, 1, 10)  # month 13: January next year
    assert expire_date("3/10/2030 and more") == midnight(2030, 3, 10)
    for bad in ("3-10-01", "", "March 10", "/10/2030", "3//2030"):
        assert expire_date(bad) is None, bad
