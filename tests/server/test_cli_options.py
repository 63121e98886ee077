"""fwknopd 2.6.10's command line: every option its usage text lists is one of ours.

An existing unit file or script that starts fwknopd must not fail with
"unrecognized arguments". Left out on purpose: its fuzzing hooks (``-A``,
``--afl-fuzzing``, ``--fault-injection-tag``), which its own packaged
build refuses too.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from fwknop_server import cli
from fwknop_server.cli import ExitCode, main
from fwknop_server.vocab import Reason

from fwknop_core import HmacKey, RijndaelKey
from tests.helpers.cfwknopd import FWKNOPD

FUZZING_HOOKS = {"-A", "--afl-fuzzing", "--fault-injection-tag"}
# each option of fwknopd -h (and the ones it takes that the text leaves out), with a value
# where it takes one
OPTIONS = [
    ["-a", "access.conf"], ["--access-file", "access.conf"], ["--access-folder", "/etc/fwknop"],
    ["-c", "fwknopd.conf"], ["--config-file", "fwknopd.conf"], ["-f"], ["--foreground"],
    ["-i", "eth0"], ["--interface", "eth0"], ["-C", "5"], ["--packet-limit", "5"],
    ["-d", "digest.cache"], ["--digest-file", "digest.cache"], ["-D"], ["--dump-config"],
    ["-K"], ["--kill"], ["-l", "C"], ["--locale", "C"], ["-O", "o.conf"],
    ["--override-config", "o.conf"], ["-p", "x.pid"], ["--pid-file", "x.pid"],
    ["-P", "udp port 1"], ["--pcap-filter", "udp port 1"], ["-R"], ["--restart"],
    ["--rotate-digest-cache"], ["-r", "/run/x"], ["--run-dir", "/run/x"], ["-S"], ["--status"],
    ["-t"], ["--test"], ["-U"], ["--udp-server"], ["-v"], ["--verbose"], ["--syslog-enable"],
    ["--dump-serv-err-codes"], ["--exit-parse-config"], ["--exit-parse-digest-cache"],
    ["--pcap-file", "x.pcap"], ["--pcap-any-direction"], ["--fw-list"], ["--fw-list-all"],
    ["--fw-flush"], ["--gpg-home-dir", "/root/.gnupg"], ["--gpg-exe", "/usr/bin/gpg"],
    ["--sudo-exe", "/usr/bin/sudo"], ["--no-firewd-check-support"], ["--no-ipt-check-support"],
    # not in the usage text, taken all the same
    ["--key-gen"], ["--key-gen-file", "keys"], ["-n"], ["--nfq-capture"],
]  # fmt: skip


@pytest.mark.parametrize("argv", OPTIONS, ids=[a[0] for a in OPTIONS])
def test_each_option_is_accepted(argv: list[str]) -> None:
    cli._parser().parse_args(argv)  # exits 2 ("unrecognized arguments") if it is not


@pytest.mark.interop
@pytest.mark.usefixtures("real_fwknop")
def test_the_list_is_the_real_usage_text() -> None:
    """Every option the real ``fwknopd -h`` names is in the list above (and so accepted)."""
    usage = subprocess.run(
        [FWKNOPD, "-h"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    named = set(re.findall(r"(?m)^\s*(?:(-[A-Za-z]), )?(--[a-z0-9-]+)", usage))
    theirs = {opt for pair in named for opt in pair if opt} - FUZZING_HOOKS - {"-h", "--help"}
    theirs -= {"-V", "--version"}  # they exit at once: checked below
    assert len(theirs) > 50
    assert theirs <= {argv[0] for argv in OPTIONS}
    for flag in ("-V", "--version", "-h", "--help"):
        with pytest.raises(SystemExit) as done:
            cli._parser().parse_args([flag])
        assert done.value.code == 0


def test_key_gen_file_writes_a_private_file(tmp_path: Path) -> None:
    """As fwknopd --key-gen-file: the two lines, to the file (replaced), and never readable by
    others."""
    path = tmp_path / "keys"
    path.write_text("old\n")
    path.chmod(0o644)
    assert main(["--key-gen-file", str(path)]) == ExitCode.OK
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = dict(line.split(": ") for line in path.read_text().splitlines())
    assert set(lines) == {"KEY_BASE64", "HMAC_KEY_BASE64"}
    assert len(RijndaelKey.from_base64(lines["KEY_BASE64"]).secret) == 32
    assert len(HmacKey.from_base64(lines["HMAC_KEY_BASE64"]).secret) == 64
    assert main(["--key-gen-file", str(tmp_path / "no" / "keys")]) == ExitCode.ERROR


def test_dump_serv_err_codes_lists_every_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dump-serv-err-codes"]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"err code: {r.key}, err string: '{r.text}'" for r in Reason]


def _files(tmp_path: Path) -> list[str]:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    access = tmp_path / "access.conf"
    keys = "KEY_BASE64 " + RijndaelKey(b"k" * 32).to_base64()
    access.write_text(f"SOURCE ANY\n{keys}\nHMAC_KEY_BASE64 {HmacKey(b'h' * 64).to_base64()}\n")
    return ["-c", str(conf), "-a", str(access), "-p", str(tmp_path / "pid"), "-f"]


def test_check_support_switches_change_nothing(tmp_path: Path) -> None:
    for flag in ("--no-firewd-check-support", "--no-ipt-check-support"):
        assert main([*_files(tmp_path), flag, "--exit-parse-config"]) == ExitCode.OK
