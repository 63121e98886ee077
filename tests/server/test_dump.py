"""``fwknopd -D``: the NAT and command settings of each stanza and of the daemon, never a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from fwknop_server.cli import ExitCode, main

from fwknop_core import generate_keys

KEYS = generate_keys()
PASSPHRASE = "gpg-passphrase-never-shown"


def test_dump_shows_nat_and_commands_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nENABLE_IPT_FORWARDING Y\n"
        "ENABLE_IPT_SNAT Y\nSNAT_TRANSLATE_IP 198.18.7.1\nENABLE_NAT_DNS N\n"
        f"DIGEST_FILE {tmp_path}/d.cache\n"
    )
    keys = f"KEY_BASE64 {KEYS.rijndael.to_base64()}\nHMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\n"
    access = tmp_path / "access.conf"
    access.write_text(
        f"SOURCE 198.18.0.0/24\n{keys}FORCE_NAT 192.168.10.2 22\nFORCE_SNAT 198.18.7.2\n"
        "OPEN_PORTS tcp/22\nREQUIRE_USERNAME alice\n"
        f"SOURCE ANY\n{keys}ENABLE_CMD_EXEC Y\nENABLE_CMD_SUDO_EXEC Y\nCMD_SUDO_EXEC_USER daemon\n"
        "CMD_EXEC_USER nobody\n"
        f"SOURCE ANY\n{keys}CMD_CYCLE_OPEN /usr/local/bin/open $SRC\n"
        "CMD_CYCLE_CLOSE /usr/local/bin/close $SRC\nCMD_CYCLE_TIMER 30\nOPEN_PORTS tcp/80\n"
        f"SOURCE ANY\nGPG_DECRYPT_PW {PASSPHRASE}\nGPG_REMOTE_ID 1234ABCD\n"
    )
    status = main(["-c", str(conf), "-a", str(access), "-D", "-f"])
    captured = capsys.readouterr()
    out = captured.out
    assert status == ExitCode.OK, captured.err
    for expected in (
        "  NAT                       forwarding, SNAT, SNAT_TRANSLATE_IP 198.18.7.1",
        "  NAT host names            not looked up",
        f"  replay cache              {tmp_path}/d.cache.sqlite",
        "  FORCE_NAT                 192.168.10.2 22",
        "  FORCE_SNAT                198.18.7.2",
        "  REQUIRE_USERNAME          alice",
        "  ENABLE_CMD_EXEC           Y",
        "  ENABLE_CMD_SUDO_EXEC      Y (as daemon)",
        "  commands run as           nobody",
        "  CMD_CYCLE_OPEN            /usr/local/bin/open $SRC",
        "  CMD_CYCLE_CLOSE           /usr/local/bin/close $SRC",
        "  CMD_CYCLE_TIMER           30",
        "  GnuPG                     home /root/.gnupg, signatures required",
    ):
        assert expected in out, expected
    for secret in (KEYS.rijndael.to_base64(), KEYS.hmac.to_base64(), PASSPHRASE):
        assert secret not in out


def test_dump_never_shows_the_replay_stores_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n"
        f"REPLAY_CACHE_URL redis://:{PASSPHRASE}@127.0.0.1:6379/0\n"
    )
    access = tmp_path / "access.conf"
    access.write_text(f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\n")
    assert main(["-c", str(conf), "-a", str(access), "-D", "-f"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "  replay cache              redis://:***@127.0.0.1:6379/0" in out
    assert PASSPHRASE not in out
