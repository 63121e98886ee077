"""GnuPG mode against the real fwknop 2.6.10, both ways.

Our core's GnuPG packets (signed and unsigned, with every HMAC type and
without one) make the real fwknopd grant access; packets from the real
client in GnuPG mode open with our core and report the signer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import (
    DigestType,
    GpgDecryption,
    GpgEncryption,
    HmacKey,
    HmacType,
    SpaMessage,
    build_packet,
    open_packet,
)
from fwknop_core.gpg import GnupgBackend
from tests.helpers.cfwknopd import RealFwknopd, fwknop_test_packet
from tests.helpers.gpghome import GpgHomes, build_homes, stop_agents
from tests.helpers.netns import CLIENT_IP, net_pair, wait_for
from tests.helpers.vectors import CLIENT_GPG_FPR, CLIENT_GPG_KEY, SERVER_GPG_KEY

pytestmark = [pytest.mark.interop, pytest.mark.gpg]
HMACS: list[HmacType | None] = [*HmacType, None]


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[GpgHomes]:
    homes = build_homes(tmp_path / "gnupg")
    yield homes
    stop_agents(homes)


def _hmac_key(kind: HmacType | None, signed: bool) -> HmacKey | None:
    if kind is None:
        return None
    return HmacKey(f"gpg-{kind.fwknop_name}-{signed}".encode() * 3, kind)


def _port(kind: HmacType | None, signed: bool) -> int:
    return 31000 + HMACS.index(kind) * 2 + int(signed)


def _stanza(kind: HmacType | None, signed: bool, home: Path) -> str:
    lines = [
        "SOURCE ANY",
        f"GPG_HOME_DIR {home}",
        f"GPG_DECRYPT_ID {SERVER_GPG_KEY}",
        "GPG_ALLOW_NO_PW Y",
        "FW_ACCESS_TIMEOUT 600",
    ]
    lines += [f"GPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}"] if signed else ["GPG_DISABLE_SIG Y"]
    if (hkey := _hmac_key(kind, signed)) is not None:
        lines += [
            f"HMAC_KEY_BASE64 {hkey.to_base64()}",
            f"HMAC_DIGEST_TYPE {hkey.type.fwknop_name}",
        ]
    return "\n".join(lines) + "\n\n"


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.usefixtures("real_fwknop", "namespaces")
def test_real_fwknopd_grants_our_gnupg_packets(homes: GpgHomes, tmp_path: Path) -> None:
    combos = [(k, s) for s in (True, False) for k in HMACS]  # stanzas with an HMAC first
    backend = GnupgBackend(str(homes.client))
    packets = []
    for i, (kind, signed) in enumerate(combos):
        msg = SpaMessage.access_request(CLIENT_IP, f"tcp/{_port(kind, signed)}", username="root")
        enc = GpgEncryption(backend, SERVER_GPG_KEY, CLIENT_GPG_KEY if signed else None)
        digest = list(DigestType)[i % len(DigestType)]
        packets.append(build_packet(msg, enc, hmac_key=_hmac_key(kind, signed), digest_type=digest))
    access = "".join(_stanza(k, s, homes.server) for k, s in combos)
    with net_pair("fg") as pair:
        server = RealFwknopd(
            pair.server,
            tmp_path / "srv",
            interface=pair.server_if,
            access_conf=access,
            # each packet may cost a gpg run per stanza: on a loaded machine the last one is
            # handled minutes after it was built
            conf_extra="MAX_SPA_PACKET_AGE 3600;\n",
        ).start()
        server.feed(pair, packets)

        def granted() -> set[int]:
            return {
                int(m.group(1))
                for r in server.iptables_rules()
                if (m := re.search(r"--dport (\d+) -m comment --comment _exp_", r))
            }

        wanted = {_port(k, s) for k, s in combos}
        wait_for(
            lambda: server.packets_seen() >= len(packets) and wanted <= granted(),
            timeout=60,
            interval=0.5,
            progress=server.packets_seen,
        )
        got, log = granted(), server.log()
        server.stop()
    missing = sorted(wanted - got)
    assert not missing, f"no grant for ports {missing}:\n{log[-4000:]}"


@pytest.mark.usefixtures("real_fwknop")
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize(
    "kind", [HmacType.SHA256, HmacType.SHA3_512, None], ids=["sha256", "sha3_512", "nohmac"]
)
def test_core_opens_the_real_clients_gnupg_packets(
    homes: GpgHomes, tmp_path: Path, kind: HmacType | None, signed: bool
) -> None:
    args = [
        "-A",
        "tcp/22",
        "-a",
        CLIENT_IP,
        "-D",
        "198.18.0.1",
        "--gpg-encryption",
        "--gpg-recipient-key",
        SERVER_GPG_KEY,
        "--gpg-home-dir",
        str(homes.client),
    ]
    if signed:
        args += ["--gpg-signer-key", CLIENT_GPG_KEY, "--gpg-no-signing-pw"]
    hkey = _hmac_key(kind, signed)
    if hkey is not None:
        args += ["--key-base64-hmac", hkey.to_base64(), "--hmac-digest-type", hkey.type.fwknop_name]
    home = tmp_path / "home"
    home.mkdir()
    wire, fields = fwknop_test_packet(args, home, self_decrypt_may_fail=True)
    assert len(wire) >= 400
    opened = open_packet(
        wire,
        GpgDecryption(GnupgBackend(str(homes.server))),
        hmac_key=hkey,
        now=time.time(),
        max_age=120,
    )
    assert opened.encoded == fields["Encoded Data"]
    assert opened.message.message == f"{CLIENT_IP},tcp/22"
    if signed:
        assert opened.gpg_signature is not None
        assert opened.gpg_signature.fingerprint == CLIENT_GPG_FPR
        assert opened.gpg_signature.trusted
    else:
        assert opened.gpg_signature is None
