"""Lines that are not ``NAME VALUE`` (issue 11 item 2), values no parser expects (item 12):
refused or warned about as fwknopd does, with file:line, never a traceback, never a key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fwknop_server.access import load_access
from fwknop_server.cli import ExitCode, main
from fwknop_server.config import load_server_config
from fwknop_server.errors import ConfigError

from tests.helpers.cfwknopd import FWKNOPD

KEY = "kHojL8HJ6vJ9tTBlXMDBjoC7E5GcRYXBUBKG9BW7m9Y="
HKEY = "I9Qv84POj6Fwpd+//10r0bC14sXVsXJlVrXixStLPCiYt17G9UCviVhc1RNgcNE7NslRu1YQGtfhW4RKvq0v3g=="
SECRET = "s3cretPassphrase"


def _access(tmp_path: Path, text: str | bytes, name: str = "access.conf") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    path.chmod(0o600)
    return path


def test_a_key_glued_to_its_name_refuses_the_file_and_is_never_shown(tmp_path: Path) -> None:
    # the slip of issue 11: pasted --key-gen output with no blank after the colon used to load
    # a stanza without its HMAC key (so packets without an HMAC were granted), key logged
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64:{HKEY}\n")
    warnings: list[str] = []
    with pytest.raises(ConfigError) as info:
        load_access([path], warnings=warnings)
    assert str(info.value) == (
        f"{path}:3: invalid access file entry: HMAC_KEY_BASE64... "
        "(a name, then blanks, then its value)"
    )
    assert not any(HKEY[:12] in w for w in warnings)


def test_a_trailing_colon_on_a_name_still_works(tmp_path: Path) -> None:
    path = _access(tmp_path, f"SOURCE: ANY\nKEY_BASE64: {KEY}\nHMAC_KEY_BASE64:\t{HKEY}\n")
    (stanza,) = load_access([path])
    assert stanza.hmac_key is not None and stanza.hmac_key.to_base64() == HKEY


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("FOO_BAR", "FOO_BAR"),  # a name alone
        ("FOO_BAR:", "FOO_BAR..."),
        ("FOO_BAR ;comment", "FOO_BAR"),  # nothing left of the value
        (f"KEY={SECRET}", "KEY..."),
        (f"KEY{SECRET}", "KEY..."),  # a secret-bearing name, its value written against it
        (f"key_base64:{KEY}", "key_base64..."),
        (f"GPG_DECRYPT_PW:{SECRET}", "GPG_DECRYPT_PW..."),
        (f"%include_keys:{SECRET}", "%include_keys..."),
        ("NAME\udcff:x", "NAME..."),  # nothing unprintable either
    ],
)
def test_every_line_must_hold_a_name_and_a_value(tmp_path: Path, line: str, shown: str) -> None:
    path = _access(
        tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n{line}\n".encode("utf-8", "surrogateescape")
    )
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == (
        f"{path}:3: invalid access file entry: {shown} (a name, then blanks, then its value)"
    )


def test_an_unknown_name_with_a_value_is_a_warning_without_the_value(tmp_path: Path) -> None:
    path = _access(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64X {HKEY}\nKEY={SECRET} {SECRET}\n",
    )
    warnings: list[str] = []
    (stanza,) = load_access([path], warnings=warnings)
    assert stanza.hmac_key is None
    assert warnings[:2] == [
        # a name that starts as a secret-bearing one may be that name with its key attached
        f"{path}:3: ignoring unknown access parameter HMAC_KEY_BASE64...",
        f"{path}:4: ignoring unknown access parameter KEY...",
    ]
    assert not any(HKEY[:12] in w or SECRET in w for w in warnings)


def test_include_keys_lines_are_held_to_the_same_rule(tmp_path: Path) -> None:
    keys = _access(tmp_path, f"HMAC_KEY_BASE64:{HKEY}\n", "keys.conf")
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n%include_keys {keys}\n")
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == (
        f"{keys}:1: invalid access file entry: HMAC_KEY_BASE64... "
        "(a name, then blanks, then its value)"
    )


def test_fwknopd_conf_skips_such_a_line_with_a_warning_as_fwknopd(tmp_path: Path) -> None:
    conf = _access(tmp_path, "PCAP_INTF:eth1\nPCAP_FILTER\nUDPSERV_PORT 1234\n", "fwknopd.conf")
    warnings: list[str] = []
    config = load_server_config(conf, warnings=warnings)
    assert config.values["PCAP_INTF"] == "eth0" and config.values["PCAP_FILTER"] == "udp port 62201"
    assert config.values["UDPSERV_PORT"] == "1234"
    assert warnings == [
        f"{conf}:1: invalid config file entry, skipped: PCAP_INTF... "
        "(a name, then blanks, then its value)",
        f"{conf}:2: invalid config file entry, skipped: PCAP_FILTER "
        "(a name, then blanks, then its value)",
    ]


# what the real fwknopd 2.6.10 does with each form (checked with --exit-parse-config):
# refuses the file (exit 1, "Invalid access file entry") or loads it
FORMS = [
    (f"HMAC_KEY_BASE64:{HKEY}", False),
    (f"HMAC_KEY_BASE64: {HKEY}", True),
    (f"HMAC_KEY_BASE64 {HKEY}", True),
    (f"FOO_BAR {HKEY}", True),  # unknown: a warning
    ("FOO_BAR", False),
    ("FOO_BAR:", False),
    ("FOO_BAR ;x", False),
    (f"KEY={SECRET}", False),
]


@pytest.mark.parametrize(("line", "loads"), FORMS)
def test_each_form_is_taken_or_refused_as_by_our_fwknopd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, loads: bool
) -> None:
    conf = _access(tmp_path, f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n", "f.conf")
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n{line}\n")
    status = main(["-c", str(conf), "-a", str(path), "--exit-parse-config", "-f"])
    assert status == (ExitCode.OK if loads else ExitCode.ERROR)
    out = capsys.readouterr()
    assert HKEY[:12] not in out.out + out.err and SECRET not in out.out + out.err


@pytest.mark.interop
@pytest.mark.usefixtures("real_fwknop")
@pytest.mark.parametrize(("line", "loads"), FORMS)
def test_each_form_is_taken_or_refused_as_by_the_real_fwknopd(
    tmp_path: Path, line: str, loads: bool
) -> None:
    conf = _access(tmp_path, f"FWKNOP_RUN_DIR {tmp_path}/run\n", "f.conf")
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n{line}\n")
    res = subprocess.run(
        [FWKNOPD, "-c", str(conf), "-a", str(path), "--exit-parse-config", "-f"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (res.returncode == 0) == loads, res.stdout + res.stderr
    assert ("Invalid access file entry" in res.stderr) == (not loads)


# -- values no parser expected (item 12): a problem with file:line, never a traceback --------


def test_a_nul_in_a_user_name_is_a_problem(tmp_path: Path) -> None:
    path = _access(
        tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\nENABLE_CMD_EXEC Y\nCMD_EXEC_USER ro\0ot\n"
    )
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == f"{path}:4: CMD_EXEC_USER 'ro\\x00ot' is not a user on this system"


def test_a_passphrase_of_any_bytes_is_its_bytes(tmp_path: Path) -> None:
    path = _access(tmp_path, b"SOURCE ANY\nKEY caf\xe9\xff\nHMAC_KEY \x80\x81hmac\n")
    (stanza,) = load_access([path])
    assert stanza.key is not None and stanza.key.secret == b"caf\xe9\xff"  # as fwknopd reads it
    assert stanza.hmac_key is not None and stanza.hmac_key.secret == b"\x80\x81hmac"


def test_a_gnupg_passphrase_must_be_text(tmp_path: Path) -> None:
    text = f"SOURCE ANY\nGPG_HOME_DIR {tmp_path}\nGPG_DECRYPT_PW pw\x00\nGPG_DISABLE_SIG Y\n"
    path = _access(tmp_path, text.encode().replace(b"\x00", b"\xff"))
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == f"{path}:3: GPG_DECRYPT_PW is not UTF-8 text"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("FW_ACCESS_TIMEOUT ²", "FW_ACCESS_TIMEOUT must be a number of seconds up to 8388608"),
        ("ACCESS_EXPIRE_EPOCH ²", "ACCESS_EXPIRE_EPOCH must be Unix seconds"),
        ("OPEN_PORTS tcp/²", "OPEN_PORTS: 'tcp/²' is not proto/port"),
        (
            "ACCESS_EXPIRE ²/01/2020",
            "invalid date value '²/01/2020' (need MM/DD/YYYY) for access stanza expiration time",
        ),
    ],
)
def test_digits_that_are_not_ascii_are_not_numbers(tmp_path: Path, line: str, problem: str) -> None:
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == f"{path}:3: {problem}"


def test_cycle_timer_digits_that_are_not_ascii(tmp_path: Path) -> None:
    path = _access(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nCMD_CYCLE_OPEN /bin/true\nCMD_CYCLE_CLOSE /bin/true\n"
        "CMD_CYCLE_TIMER ³\n",
    )
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == f"{path}:5: CMD_CYCLE_TIMER must be 1..8388608 seconds"


def test_an_include_that_is_not_a_regular_file_is_a_problem(tmp_path: Path) -> None:
    path = _access(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n%include_keys /dev/zero\n")
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == f"{path}:3: %include_keys: /dev/zero: not a regular file"
    path = _access(tmp_path, f"%include /dev/zero\nSOURCE ANY\nKEY_BASE64 {KEY}\n")
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value) == "/dev/zero: not a regular file"


def test_include_keys_of_any_bytes(tmp_path: Path) -> None:
    keys = _access(tmp_path, b"KEY caf\xe9\n", "keys.conf")
    path = _access(tmp_path, f"SOURCE ANY\n%include_keys {keys}\n")
    (stanza,) = load_access([path])
    assert stanza.key is not None and stanza.key.secret == b"caf\xe9"
