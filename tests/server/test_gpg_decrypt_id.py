"""GPG_DECRYPT_ID is the only key a GnuPG packet may be opened with.

Before: it was read and never used; gpg decrypted with any secret key in
the stanza's GnuPG home (the real fwknopd 2.6.10 does the same: see
``decrypt-id-names-another-key`` in test_gpg_policies.py). Here the home
holds two secret keys, the server's and the client's, and the real client
makes one packet for each; a stanza takes only the packet made for its
GPG_DECRYPT_ID, however that ID is written (short or long ID, fingerprint,
the encryption subkey's ID).
"""

from __future__ import annotations

import ipaddress
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
from tests.helpers.netns import CLIENT_IP, SERVER_IP
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
SERVER_PRIMARY = SERVER_GPG_FPR[-16:]


@dataclass(frozen=True)
class TwoKeys:
    """A server home holding both secret keys, and the real client's packet for each key."""

    home: Path
    to_server: str
    to_client: str


@pytest.fixture(scope="module")
def two_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoKeys]:
    root = tmp_path_factory.mktemp("gpg-decrypt-id")
    homes = build_homes(root)
    both = root / "both"
    both.mkdir(mode=0o700)
    _gpg(both, "--import", str(GPG_DIR / "server-secret.asc"), str(GPG_DIR / "client-secret.asc"))
    packets = []
    for recipient in (SERVER_GPG_KEY, CLIENT_GPG_KEY):
        work = root / f"to-{recipient}"
        work.mkdir()
        args = ["--gpg-encryption", "--gpg-recipient-key", recipient,
                "--gpg-home-dir", str(homes.client), "-A", "tcp/22", "-a", CLIENT_IP,
                "-D", SERVER_IP]  # fmt: skip
        packets.append(fwknop_test_packet(args, work, self_decrypt_may_fail=True)[0])
    yield TwoKeys(both, *packets)
    stop_agents(homes)
    stop_agents(GpgHomes(both, both))


def _decide(tmp_path: Path, keys: TwoKeys, decrypt_id: str | None, wire: str) -> Accepted | Refused:
    path = tmp_path / "access.conf"
    line = "" if decrypt_id is None else f"GPG_DECRYPT_ID {decrypt_id}\n"
    path.write_text(
        f"SOURCE ANY\nGPG_HOME_DIR {keys.home}\n{line}GPG_ALLOW_NO_PW Y\nGPG_DISABLE_SIG Y\n"
    )
    processor = Processor(load_access([path]), Settings())
    decision = settle(processor.process(Packet(wire.encode(), SRC, DST), now=time.time()))
    assert isinstance(decision, Accepted | Refused)
    return decision


@pytest.mark.parametrize(
    "server_id",
    [SERVER_PRIMARY, SERVER_PRIMARY[-8:], SERVER_GPG_FPR, SERVER_GPG_KEY, f"0x{SERVER_PRIMARY}"],
    ids=["long-id", "short-id", "fingerprint", "subkey-id", "0x-id"],
)
def test_only_a_packet_for_the_decrypt_id_is_opened(
    two_keys: TwoKeys, tmp_path: Path, server_id: str
) -> None:
    accepted = _decide(tmp_path, two_keys, server_id, two_keys.to_server)
    assert isinstance(accepted, Accepted), accepted
    refused = _decide(tmp_path, two_keys, server_id, two_keys.to_client)
    assert isinstance(refused, Refused)
    assert refused.reason is Reason.DECRYPT_FAILED
    assert f"not GPG_DECRYPT_ID {server_id}" in refused.detail


def test_the_other_key_as_decrypt_id_turns_the_verdicts_round(
    two_keys: TwoKeys, tmp_path: Path
) -> None:
    assert isinstance(_decide(tmp_path, two_keys, CLIENT_GPG_FPR, two_keys.to_client), Accepted)
    refused = _decide(tmp_path, two_keys, CLIENT_GPG_FPR, two_keys.to_server)
    assert isinstance(refused, Refused) and refused.reason is Reason.DECRYPT_FAILED


def test_a_decrypt_id_of_no_key_in_the_home_opens_nothing(
    two_keys: TwoKeys, tmp_path: Path
) -> None:
    for wire in (two_keys.to_server, two_keys.to_client):
        refused = _decide(tmp_path, two_keys, "DEADBEEFDEADBEEF", wire)
        assert isinstance(refused, Refused) and refused.reason is Reason.DECRYPT_FAILED


def test_without_a_decrypt_id_any_secret_key_of_the_home_opens(
    two_keys: TwoKeys, tmp_path: Path
) -> None:
    # a stanza without one takes whatever its home can decrypt
    for wire in (two_keys.to_server, two_keys.to_client):
        assert isinstance(_decide(tmp_path, two_keys, None, wire), Accepted)
