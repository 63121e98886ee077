"""fwknopd's fwknop 1.x options: --os (fingerprints), --fw-log (refused by name), -D and checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from fwknop_server.cli import ExitCode, main

from tests.helpers import packets as pk
from tests.helpers.legacy import LEGACY, os_fingerprint

CUSTOM = os_fingerprint()["client_syn"]["fwknop_1x_with_custom_line"]
P0F_FP = Path("/etc/p0f/p0f.fp")  # Debian's p0f package (APT_TEST)
SEQUENCES = (
    "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: s3cret-key;\nOPEN_PORTS: tcp/22;\n"
    "SOURCE: ANY;\nSHARED_SEQUENCE: tcp/5501, udp/5502, icmp;\nOPEN_PORTS: tcp/22;\n"
    "KNOCK_LIMIT: 3;\n"
)


def _files(tmp_path: Path, access: str = SEQUENCES, conf: str = "") -> list[str]:
    (tmp_path / "fwknopd.conf").write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n{conf}"
    )
    (tmp_path / "access.conf").write_text(access)
    return ["-c", str(tmp_path / "fwknopd.conf"), "-a", str(tmp_path / "access.conf")]


def test_os_mode_prints_what_1x_printed_for_the_recorded_syn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 1.x's custom pf.os line, the recorded client's first SYN gets 1.x's answer."""
    pf_os = tmp_path / "pf.os"
    pf_os.write_text((LEGACY / "pf.os").read_text() + CUSTOM["line"] + "\n")
    args = _files(tmp_path, conf=f"P0F_FILE {pf_os}\nP0F_FP_FILE /dev/null\n")
    pcap = str(LEGACY / "pcap" / "enc-basic-root.pcap")
    assert main([*args, "--os", "--pcap-file", pcap, "-C", "1"]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "198.18.5.1:47526 -> 198.18.5.2:61083  p0f "
        f"{os_fingerprint()['client_syn']['p0f_v3_raw_sig']}  pf.os S44:64:1:60:M1460,S,T,N,W10"
    )
    # 1.x printed "S44:64:1:60:M*,S,T,N,W10         Linux:6.x::Linux 6.x (lk test)"
    assert lines[1:] == [f"      pf.os  {CUSTOM['os_key']:<40} S44:64:1:60:M*,S,T,N,W10"]


@pytest.mark.skipif(not P0F_FP.exists(), reason="Debian's p0f package is not installed")
def test_os_mode_with_debians_p0f_signatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """p0f 3.09b said 'Linux 2.2.x-3.x' (its generic signature) for the recorded SYN."""
    args = _files(tmp_path, conf="P0F_FILE /dev/null\n")
    pcap = str(LEGACY / "pcap" / "enc-basic-root.pcap")
    assert main([*args, "--os", "--pcap-file", pcap]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 * 32  # every SYN of the sequence, each with its one p0f guess
    assert out[1].startswith("      p0f    Linux:2.2.x-3.x (generic)")


def test_os_mode_without_signature_files_still_prints_each_syn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    syns = [
        pk.tcp_syn("198.18.0.2", "198.18.0.1", 22),
        pk.tcp_syn("2001:db8::2", "2001:db8::1", 443),
    ]
    pcap = pk.write_pcap(
        tmp_path / "syns.pcap", enumerate([*syns, pk.udp("198.18.0.2", "198.18.0.1", 53)])
    )
    args = _files(tmp_path, conf="P0F_FILE /dev/null\nP0F_FP_FILE /dev/null\n")
    assert main([*args, "--os", "--pcap-file", str(pcap)]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  p0f ")[0] for line in out[::2]] == [
        "198.18.0.2:40000 -> 198.18.0.1:22",
        "[2001:db8::2]:40000 -> [2001:db8::1]:443",
    ]
    assert out[1::2] == ["      (no signature files: set P0F_FILE or P0F_FP_FILE)"] * 2


def test_fw_log_is_refused_by_name_with_what_to_use(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--os", "--fw-log", "/var/log/messages"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("fwknopd: --fw-log (fwknop 1.x: read iptables LOG lines from syslog) ")
    assert "--os with --pcap-file FILE" in err


def test_dump_and_check_name_the_sequence_stanzas_and_never_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _files(tmp_path)
    assert main([*args, "--exit-parse-config"]) == ExitCode.OK
    assert capsys.readouterr().out == (
        "configuration is valid: 0 access stanza(s) and 2 knock-sequence stanza(s)\n"
    )
    assert main([*args, "-D", "--no-locale"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "s3cret-key" not in out
    assert "stanza #1 (" in out and "access.conf:1): encrypted knock sequence" in out
    assert "  KEY                       <10 bytes>" in out
    assert "  PORT_OFFSET               61000 (ports 61000..61255)" in out
    assert "  SHARED_SEQUENCE           tcp/5501, udp/5502, icmp" in out
    assert "  KNOCK_LIMIT               3" in out
