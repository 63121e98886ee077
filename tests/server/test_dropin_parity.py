"""Drop-in parity: ``--exit-parse-config`` gives fwknopd 2.6.10's verdict on each case.

Each case in ``tests/data/dropin`` is a small configuration of our own, one
decision each: a ``NAME.fwknopd.conf`` runs with the default access file, a
``NAME.access.conf`` with the default fwknopd.conf. ``CASES`` holds what the
real ``/usr/sbin/fwknopd --exit-parse-config`` says of it (checked against
the binary itself by the interop test below), what ours says, and the words
our output must hold. Where the two verdicts differ, it is on purpose
(README, "Where we differ"), and ``ON_PURPOSE`` says why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fwknop_server.cli import main

from tests.helpers.cfwknopd import FWKNOPD

DATA = Path(__file__).parent.parent / "data" / "dropin"

# name: (the real fwknopd accepts it, ours accepts it, words in our output)
CASES: dict[str, tuple[bool, bool, str]] = {
    "default.access.conf": (True, True, "configuration is valid"),
    "expire_short_past.access.conf": (True, True, "has expired: it is loaded and never matches"),
    "expire_dashes.access.conf": (False, False, "invalid date value '3-10-01'"),
    "hmac_130_bytes.access.conf": (True, True, "the fwknop client makes no packet for a key"),
    "hmac_140_bytes.access.conf": (True, True, "refuses every packet for it; so do we"),
    "key_33_bytes.access.conf": (True, True, "refuses every packet for it; so do we"),
    "masquerade_without_forwarding.access.conf": (True, True, "this stanza opens nothing"),
    "include_keys_missing.access.conf": (True, True, "was not found"),
    "include_keys_missing_no_key.access.conf": (False, False, "no keys for this stanza"),
    # fwknopd checks a stanza at its %include_keys: one without keys yet is dropped there
    "include_keys_missing_then_key.access.conf": (True, True, "dropped at its %include_keys"),
    "include_keys_after_bad_ports.access.conf": (False, False, "'ftp/21' is not proto/port"),
    "relative_run_dir.fwknopd.conf": (False, False, "path 'run/fwknop' is not absolute"),
    "embedded_variable.fwknopd.conf": (True, False, "invalid embedded variable $NO_SUCH_SETTING"),
    "firewd_input_access_malformed.fwknopd.conf": (
        True,
        True,
        "ignored, as FIREWALL_TYPE is not firewalld",
    ),
    "ipfw_equal_sets.fwknopd.conf": (True, True, "ignored, as FIREWALL_TYPE is not ipfw"),
    "ipfw_equal_sets_for_ipfw.fwknopd.conf": (True, False, "must differ (both are 1)"),
    "firewall_type_typo.fwknopd.conf": (True, False, "FIREWALL_TYPE 'iptable' is not a firewall"),
}
# why ours refuses what the real binary (its Linux build) accepts
ON_PURPOSE = {
    # fwknopd warns and runs with the setting's default: another interface, access file or
    # chain than the one written
    "embedded_variable.fwknopd.conf",
    # fwknopd's ipfw build refuses it too; its Linux build ignores IPFW_* and FIREWALL_TYPE
    "ipfw_equal_sets_for_ipfw.fwknopd.conf",
    # FIREWALL_TYPE is ours: a misspelt one must not pick another firewall
    "firewall_type_typo.fwknopd.conf",
}


def _files(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The case's fwknopd.conf and access.conf in ``tmp_path`` (its run directory there)."""
    conf = "default.fwknopd.conf" if name.endswith(".access.conf") else name
    access = name if name.endswith(".access.conf") else "default.access.conf"
    paths = []
    for source in (conf, access):
        path = tmp_path / source
        path.write_text((DATA / source).read_text().replace("@RUN@", str(tmp_path / "run")))
        path.chmod(0o600)
        paths.append(path)
    return paths[0], paths[1]


def _argv(tmp_path: Path, name: str) -> list[str]:
    conf, access = _files(tmp_path, name)
    return ["-c", str(conf), "-a", str(access), "-d", str(tmp_path / "digest.cache"),
            "-p", str(tmp_path / "fwknopd.pid"), "-f", "--exit-parse-config"]  # fmt: skip


def test_every_case_is_in_the_table() -> None:
    """A case file without a verdict (or a verdict without its file) is a mistake."""
    names = {p.name for p in DATA.glob("*.conf")} - {"default.fwknopd.conf"}
    assert names == set(CASES)
    assert {n for n, (real, ours, _) in CASES.items() if real != ours} == ON_PURPOSE


@pytest.mark.parametrize("name", sorted(CASES))
def test_our_verdict(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Ours accepts or refuses each case as decided, and says why in the expected words."""
    _, accepts, words = CASES[name]
    status = main(_argv(tmp_path, name))
    out = capsys.readouterr()
    assert (status == 0) is accepts, out
    assert words in out.out + out.err


@pytest.mark.interop
@pytest.mark.usefixtures("real_fwknop")
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_real_fwknopd_verdict(tmp_path: Path, name: str) -> None:
    """The table's verdicts for the real binary are the real binary's."""
    accepts = CASES[name][0]
    done = subprocess.run(
        [FWKNOPD, *_argv(tmp_path, name)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert (done.returncode == 0) is accepts, done.stdout + done.stderr
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
