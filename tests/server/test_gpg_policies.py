"""GnuPG on the server: the real client's packets, signed and unsigned, against every policy.

The expected verdicts are the real fwknopd 2.6.10's for the same packets and
stanzas (run in a namespace with these keys), except where noted: it cannot
use a key that has a passphrase with GnuPG 2.2 (it never sets loopback
pinentry, so every such decryption fails with "Inappropriate ioctl for
device"), and it ignores fwknopd.conf's ``GPG_EXE`` (only a stanza's own is
used). In those two places we do what the configuration says.
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fwknop_server.access import load_access
from fwknop_server.gpgpool import settle
from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import Accepted, Packet, Reason, Refused

from tests.helpers.cfwknopd import fwknop_test_packet
from tests.helpers.gpghome import GpgHomes, _gpg, build_homes, stop_agents
from tests.helpers.knock import real_knock
from tests.helpers.netns import CLIENT_IP, SERVER_IP, NetPair, drop_policy_nft, net_pair
from tests.helpers.ourd import OurFwknopd
from tests.helpers.vectors import (
    CLIENT_GPG_FPR,
    CLIENT_GPG_KEY,
    GPG_DIR,
    SERVER_GPG_FPR,
    SERVER_GPG_KEY,
)

pytestmark = [pytest.mark.gpg, pytest.mark.interop, pytest.mark.usefixtures("real_fwknop")]

SRC = ipaddress.ip_address(CLIENT_IP)
DST = ipaddress.ip_address(SERVER_IP)
PASSPHRASE = "secretpw"


@dataclass(frozen=True)
class Keyrings:
    """Server homes: trusting the client key, not trusting it, with a passphrase on its key."""

    homes: GpgHomes
    untrusted: Path
    protected: Path
    wrapper: Path  # a GPG_EXE that records that it ran, then runs gpg
    signed: str  # the real client's packets, from the client home
    unsigned: str

    def wrapper_runs(self) -> int:
        """How often the wrapper ran so far."""
        log = self.wrapper.with_suffix(".log")
        return log.read_text().count("\n") if log.exists() else 0


def _client(homes: GpgHomes, work: Path, *signer: str) -> str:
    args = ["--gpg-encryption", "--gpg-recipient-key", SERVER_GPG_KEY,
            "--gpg-home-dir", str(homes.client), *signer,
            "-A", "tcp/22", "-a", CLIENT_IP, "-D", SERVER_IP]  # fmt: skip
    work.mkdir(exist_ok=True)
    wire, _fields = fwknop_test_packet(args, work, self_decrypt_may_fail=True)
    return wire


@pytest.fixture(scope="module")
def keyrings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyrings]:
    root = tmp_path_factory.mktemp("gpg-policies")
    homes = build_homes(root)
    untrusted = root / "untrusted"
    protected = root / "protected"
    for home in (untrusted, protected):
        home.mkdir(mode=0o700)
        _gpg(
            home, "--import", str(GPG_DIR / "server-secret.asc"), str(GPG_DIR / "client-public.asc")
        )
    _gpg(protected, "--import-ownertrust", stdin=f"{CLIENT_GPG_FPR}:6:\n".encode())
    (root / "pw").write_text(PASSPHRASE + "\n")
    _gpg(protected, "--pinentry-mode", "loopback", "--passphrase-file", str(root / "pw"),
         "--change-passphrase", SERVER_GPG_FPR)  # fmt: skip
    (root / "pw").unlink()
    wrapper = root / "gpg-wrapper.sh"
    wrapper.write_text(
        f'#!/bin/sh\necho run >> {wrapper.with_suffix(".log")}\nexec /usr/bin/gpg "$@"\n'
    )
    wrapper.chmod(0o755)
    signed = _client(homes, root / "c1", "--gpg-signer-key", CLIENT_GPG_KEY, "--gpg-no-signing-pw")
    unsigned = _client(homes, root / "c2")
    yield Keyrings(homes, untrusted, protected, wrapper, signed, unsigned)
    stop_agents(homes)
    for home in (untrusted, protected):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


ACCEPT, REFUSE_SIG, REFUSE_DECRYPT = "accept", Reason.GPG_SIGNATURE, Reason.DECRYPT_FAILED
ID = f"GPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}\n"
# policy id: (stanza lines, which server home, signed verdict, unsigned verdict)
POLICIES = {
    "require-sig-and-remote-id": ("GPG_REQUIRE_SIG Y\n" + ID, "srv", ACCEPT, REFUSE_SIG),
    "signature-required-by-default": (ID, "srv", ACCEPT, REFUSE_SIG),
    "disable-sig-accepts-unsigned": ("GPG_DISABLE_SIG Y\n", "srv", ACCEPT, ACCEPT),
    "require-sig-n-does-not-disable": ("GPG_REQUIRE_SIG N\n" + ID, "srv", ACCEPT, REFUSE_SIG),
    "require-and-disable-checks-sigs": (
        "GPG_REQUIRE_SIG Y\nGPG_DISABLE_SIG Y\n", "srv", ACCEPT, REFUSE_SIG,
    ),
    "fingerprint": (f"GPG_FINGERPRINT_ID {CLIENT_GPG_FPR}\n", "srv", ACCEPT, REFUSE_SIG),
    "fingerprint-of-another-key": (
        f"GPG_FINGERPRINT_ID {SERVER_GPG_FPR}\n", "srv", REFUSE_SIG, REFUSE_SIG,
    ),
    "fingerprint-in-lower-case": (
        f"GPG_FINGERPRINT_ID {CLIENT_GPG_FPR.lower()}\n", "srv", REFUSE_SIG, REFUSE_SIG,
    ),
    "remote-id-long-form-never-matches": (
        f"GPG_REMOTE_ID {CLIENT_GPG_KEY}\n", "srv", REFUSE_SIG, REFUSE_SIG,
    ),
    "remote-id-in-lower-case": (
        f"GPG_REMOTE_ID {CLIENT_GPG_KEY[-8:].lower()}\n", "srv", REFUSE_SIG, REFUSE_SIG,
    ),
    "remote-id-list": (f"GPG_REMOTE_ID 11111111, {CLIENT_GPG_KEY[-8:]}\n", "srv", ACCEPT,
                       REFUSE_SIG),
    "remote-id-and-fingerprint-both-must-match": (
        ID + f"GPG_FINGERPRINT_ID {SERVER_GPG_FPR}\n", "srv", REFUSE_SIG, REFUSE_SIG,
    ),
    "untrusted-signer": (ID, "untrusted", REFUSE_SIG, REFUSE_SIG),
    "untrusted-signer-ignored": (
        ID + "GPG_IGNORE_SIG_VERIFY_ERROR Y\n", "untrusted", ACCEPT, REFUSE_SIG,
    ),
    "ignore-verify-error-still-needs-a-signature": (
        ID + "GPG_IGNORE_SIG_VERIFY_ERROR Y\n", "srv", ACCEPT, REFUSE_SIG,
    ),
    # fwknopd 2.6.10 decrypts with any secret key of the home, whatever GPG_DECRYPT_ID says;
    # we open only what its key decrypted (test_gpg_decrypt_id.py)
    "decrypt-id-names-another-key": (
        "GPG_DECRYPT_ID DEADBEEFDEADBEEF\nGPG_DISABLE_SIG Y\n", "srv", REFUSE_DECRYPT,
        REFUSE_DECRYPT,
    ),
    "a-passphrase-the-key-does-not-need": (
        "GPG_DECRYPT_PW wrongpw\nGPG_DISABLE_SIG Y\n", "srv", ACCEPT, ACCEPT,
    ),
    # fwknopd 2.6.10 refuses these two (it cannot hand gpg 2.2 a passphrase); we decrypt
    "the-keys-passphrase": (
        f"GPG_DECRYPT_PW {PASSPHRASE}\n" + ID, "protected", ACCEPT, REFUSE_SIG,
    ),
    "the-keys-passphrase-unsigned-allowed": (
        f"GPG_DECRYPT_PW {PASSPHRASE}\nGPG_DISABLE_SIG Y\n", "protected", ACCEPT, ACCEPT,
    ),
    "a-wrong-passphrase": (
        "GPG_DECRYPT_PW wrongpw\nGPG_DISABLE_SIG Y\n", "protected", REFUSE_DECRYPT, REFUSE_DECRYPT,
    ),
    "no-passphrase-for-a-key-that-has-one": (
        "GPG_ALLOW_NO_PW Y\nGPG_DISABLE_SIG Y\n", "protected", REFUSE_DECRYPT, REFUSE_DECRYPT,
    ),
}  # fmt: skip


def _home(keyrings: Keyrings, which: str) -> Path:
    return {"srv": keyrings.homes.server, "untrusted": keyrings.untrusted,
            "protected": keyrings.protected}[which]  # fmt: skip


def _stanza(lines: str, home: Path | None) -> str:
    pw = "" if "GPG_DECRYPT_PW" in lines or "GPG_ALLOW_NO_PW" in lines else "GPG_ALLOW_NO_PW Y\n"
    where = f"GPG_HOME_DIR {home}\n" if home is not None else ""
    return f"SOURCE ANY\n{where}GPG_DECRYPT_ID {SERVER_GPG_KEY}\n{pw}{lines}"


def _decide(tmp_path: Path, text: str, wire: str, **load: str) -> Accepted | Refused:
    path = tmp_path / "access.conf"
    path.write_text(text)
    processor = Processor(load_access([path], **load), Settings())
    decision = settle(processor.process(Packet(wire.encode(), SRC, DST), now=time.time()))
    assert isinstance(decision, Accepted | Refused)
    return decision


def _verdict(decision: Accepted | Refused) -> str | Reason:
    return ACCEPT if isinstance(decision, Accepted) else decision.reason


@pytest.mark.parametrize("policy", list(POLICIES))
def test_each_policy_takes_signed_and_unsigned_packets_as_fwknopd_does(
    policy: str, keyrings: Keyrings, tmp_path: Path
) -> None:
    lines, which, signed, unsigned = POLICIES[policy]
    # a fresh agent: a passphrase it cached for another policy must not decide this one
    subprocess.run(["gpgconf", "--homedir", str(_home(keyrings, which)), "--kill", "gpg-agent"],
                   check=False)  # fmt: skip
    text = _stanza(lines, _home(keyrings, which))
    assert _verdict(_decide(tmp_path, text, keyrings.signed)) == signed
    assert _verdict(_decide(tmp_path, text, keyrings.unsigned)) == unsigned


def test_the_refusals_say_why(keyrings: Keyrings, tmp_path: Path) -> None:
    home = keyrings.homes.server
    unsigned = _decide(tmp_path, _stanza(ID, home), keyrings.unsigned)
    assert isinstance(unsigned, Refused) and unsigned.detail == "the packet is not signed"
    other = _decide(tmp_path, _stanza("GPG_REMOTE_ID 11111111\n", home), keyrings.signed)
    assert isinstance(other, Refused)
    assert other.detail == "ID 67CD0C2C is not in GPG_REMOTE_ID"
    untrusted = _decide(tmp_path, _stanza(ID, keyrings.untrusted), keyrings.signed)
    assert isinstance(untrusted, Refused)
    assert untrusted.detail.startswith("signature from a key of validity")


def test_fwknopd_confs_gnupg_home_and_exe_are_the_defaults(
    keyrings: Keyrings, tmp_path: Path
) -> None:
    text = _stanza("GPG_DISABLE_SIG Y\n", None)
    before = keyrings.wrapper_runs()
    decision = _decide(
        tmp_path, text, keyrings.unsigned,
        gpg_home_dir=str(keyrings.homes.server), gpg_exe=str(keyrings.wrapper),
    )  # fmt: skip
    assert isinstance(decision, Accepted)
    assert keyrings.wrapper_runs() > before  # our gpg, as configured (fwknopd ignores it)
    # a stanza's own GPG_EXE and GPG_HOME_DIR win over fwknopd.conf's
    stanza_exe = _stanza(f"GPG_DISABLE_SIG Y\nGPG_EXE {keyrings.wrapper}\n", keyrings.homes.server)
    before = keyrings.wrapper_runs()
    decision = _decide(
        tmp_path, stanza_exe, keyrings.unsigned, gpg_home_dir="/nonexistent", gpg_exe="/bin/false"
    )
    assert isinstance(decision, Accepted) and keyrings.wrapper_runs() > before


def test_the_sig_warnings_fwknopd_gives_at_start(keyrings: Keyrings, tmp_path: Path) -> None:
    path = tmp_path / "access.conf"
    home = keyrings.homes.server
    path.write_text(
        _stanza("GPG_DISABLE_SIG Y\n", home)
        + _stanza("GPG_REQUIRE_SIG Y\nGPG_DISABLE_SIG Y\n", home)
    )
    warnings: list[str] = []
    load_access([path], warnings=warnings)
    assert [w for w in warnings if "GPG_" in w] == [
        f"{path}:5: GPG_DISABLE_SIG: unsigned GnuPG packets are accepted "
        "(GPG_REQUIRE_SIG should really be enabled)",
        f"{path}:11: GPG_REQUIRE_SIG and GPG_DISABLE_SIG are both set, signatures are checked",
    ]


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("gp") as made:
        yield made


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.usefixtures("namespaces")
def test_the_daemon_refuses_unsigned_packets_until_the_policy_allows_them(
    pair: NetPair, keyrings: Keyrings, tmp_path: Path
) -> None:
    drop_policy_nft(pair.server)
    pair.listen_tcp(22, 2222)
    home = keyrings.homes.server
    server = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=_stanza(ID, home)
    ).start()
    gpg = ["--gpg-encryption", "--gpg-recipient-key", SERVER_GPG_KEY,
           "--gpg-home-dir", str(keyrings.homes.client)]  # fmt: skip
    signer = ["--gpg-signer-key", CLIENT_GPG_KEY, "--gpg-no-signing-pw"]
    client_home = tmp_path / "client"

    def knock(port: int, *extra: str) -> None:
        real_knock(pair.client, client_home, SERVER_IP, "-A", f"tcp/{port}", *extra,
                   keys=gpg, allow=CLIENT_IP)  # fmt: skip

    knock(2222)
    assert server.wait_log(
        "refused SPA packet from 198.18.0.2 udp/62201 (stanza #1): GnuPG signature refused: "
        "the packet is not signed",
        timeout=30,
    ), server.log()
    assert not pair.tcp_open(2222)
    knock(22, *signer)
    assert pair.wait_open(22), server.log()
    server.access.write_text(_stanza("GPG_DISABLE_SIG Y\n", home))
    server.signal(signal.SIGHUP)
    assert server.wait_log("configuration reloaded")
    knock(2222)
    assert pair.wait_open(2222), server.log()
    shutil.rmtree(client_home)
