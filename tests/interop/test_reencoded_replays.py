"""A real-client packet captured and sent again in another form is granted once (issue 11, #1).

Stanzas without an HMAC key, packets from the real fwknop 2.6.10 client with
allow IP 0.0.0.0 (``-s``): whoever sends a packet that opens gets the port
for their own address. The client's address sends the original; the
attacker's address (a second one in the client namespace) sends every
variant of it (tests/helpers/variants.py) and the original again.

* Our fwknopd grants the original, refuses each re-encoding as not
  canonical and each re-framing (GnuPG) and the original as a replay, and
  never opens anything for the attacker.
* The C fwknopd 2.6.10 decrypts every variant as a new packet (its digest
  cache gets one line per variant) and opens the port for the attacker;
  only GPGME refuses the GnuPG packet with zero bytes appended.
  Its digest for the original is ours, so our fwknopd started on its files
  refuses the original as a replay, and the re-encodings as not canonical.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import GpgDecryption, RijndaelKey, open_packet, replay_digest
from fwknop_core.gpg import GnupgBackend
from tests.helpers.cfwknopd import RealFwknopd, fwknop_test_packet
from tests.helpers.gpghome import GpgHomes, build_homes, stop_agents
from tests.helpers.netns import (
    CLIENT_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd, nft_set
from tests.helpers.variants import (
    GPG_PREFIX,
    RIJNDAEL_PREFIX,
    gpg_reframings,
    reencodings,
    truncated_padding,
)
from tests.helpers.vectors import CLIENT_GPG_KEY, SERVER_GPG_KEY

pytestmark = REAL_KNOCK_MARKS

ATTACKER_IP = "198.18.0.66"
KEY = RijndaelKey(b"reencoded-replays-test-key-32byt")
RIJNDAEL_STANZA = f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nFW_ACCESS_TIMEOUT 60\n\n"
NOT_CANONICAL = (
    f"from {ATTACKER_IP} udp/62201 (stanza #{{}}): decrypted data is invalid: not canonical"
)
REPLAYED = f"from {ATTACKER_IP} udp/62201 (stanza #{{}}): replayed packet"


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("rr") as made:
        made.client.run(["ip", "addr", "add", f"{ATTACKER_IP}/24", "dev", made.client_if])
        yield made


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[GpgHomes]:
    made = build_homes(tmp_path / "gnupg")
    yield made
    stop_agents(made)


def _gpg_stanza(homes: GpgHomes) -> str:
    return (
        f"SOURCE ANY\nGPG_HOME_DIR {homes.server}\nGPG_DECRYPT_ID {SERVER_GPG_KEY}\n"
        f"GPG_ALLOW_NO_PW Y\nGPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}\nFW_ACCESS_TIMEOUT 60\n\n"
    )


def _gpg_args(homes: GpgHomes) -> list[str]:
    return [
        "--gpg-encryption", "--gpg-recipient-key", SERVER_GPG_KEY,
        "--gpg-signer-key", CLIENT_GPG_KEY, "--gpg-no-signing-pw",
        "--gpg-home-dir", str(homes.client),
    ]  # fmt: skip


def _rijndael_packets(home: Path) -> dict[str, str]:
    """Real-client packets that between them have every re-encoding, each with its variants.

    A text of length 0 mod 4 whose last block is all padding (a dangling
    character; the padding block dropped), and one of 2 or 3 mod 4 (unused
    bits). Which lengths come out depends on the username and the port.
    """
    home.mkdir(exist_ok=True)
    found: dict[str, str] = {}
    for port in (22, 222, 2222, 22222):
        for n in range(1, 17):
            wire, _ = fwknop_test_packet(
                ["-A", f"tcp/{port}", "-s", "-D", SERVER_IP, "-U", "u" * n,
                 "--key-base64-rijndael", KEY.to_base64()], home,
            )  # fmt: skip
            opened = open_packet(wire, KEY)
            full = len(f"{opened.encoded}:{opened.digest}") % 16 == 0
            kind = {0: "dangling", 2: "unused_bits", 3: "unused_bits"}[
                len(RIJNDAEL_PREFIX + wire) % 4
            ]
            if kind == "dangling" and not full:
                continue
            found.setdefault(kind, wire)
            if len(found) == 2:
                return found
    raise AssertionError(f"the client made no such packets: {sorted(found)}")


def _variants(wire: str, prefix: str) -> dict[str, str]:
    """The re-encodings (refused as not canonical by ours), then the rest (replays for ours)."""
    found = reencodings(wire, prefix)
    if prefix == RIJNDAEL_PREFIX and "dangling" in found:
        found["truncated_padding"] = truncated_padding(wire)
    return found


def _attack_ours(pair: NetPair, server: OurFwknopd, wire: str, prefix: str, stanza: int) -> None:
    """Grant the original to the client, then every variant from the attacker: all refused."""
    canonical_before = server.log().count(NOT_CANONICAL.format(stanza))
    replayed_before = server.log().count(REPLAYED.format(stanza))
    granted_before = server.log().count(f"for {CLIENT_IP}")
    pair.send_udp([wire])
    assert wait_for(lambda: server.log().count(f"for {CLIENT_IP}") > granted_before, timeout=30)
    reencoded = _variants(wire, prefix)
    other = gpg_reframings(wire) if prefix == GPG_PREFIX else {}
    pair.send_udp([*reencoded.values(), *other.values(), wire], source=ATTACKER_IP, interval=0.05)
    canonical = canonical_before + len(reencoded)
    replayed = replayed_before + len(other) + 1
    assert wait_for(
        lambda: (
            server.log().count(NOT_CANONICAL.format(stanza)) == canonical
            and server.log().count(REPLAYED.format(stanza)) == replayed
        ),
        timeout=30,
    ), server.log()


def test_ours_refuses_every_variant_of_a_real_rijndael_packet(
    pair: NetPair, tmp_path: Path
) -> None:
    packets = _rijndael_packets(tmp_path / "home")
    drop_policy_nft(pair.server)
    server = OurFwknopd(
        pair.server, tmp_path / "ours", interface=pair.server_if, access_conf=RIJNDAEL_STANZA
    ).start()
    for wire in packets.values():
        _attack_ours(pair, server, wire, RIJNDAEL_PREFIX, 1)
    assert CLIENT_IP in nft_set(pair.server)
    assert ATTACKER_IP not in nft_set(pair.server)
    assert f"for {ATTACKER_IP}" not in server.log()
    assert server.log().count(f"for {CLIENT_IP} for 60 s") == len(packets)


@pytest.mark.gpg
def test_ours_refuses_every_variant_of_a_real_gnupg_packet(
    pair: NetPair, homes: GpgHomes, tmp_path: Path
) -> None:
    (tmp_path / "home").mkdir()
    wire, _ = fwknop_test_packet(
        ["-A", "tcp/22", "-s", "-D", SERVER_IP, *_gpg_args(homes)],
        tmp_path / "home", self_decrypt_may_fail=True,
    )  # fmt: skip
    drop_policy_nft(pair.server)
    server = OurFwknopd(
        pair.server, tmp_path / "ours", interface=pair.server_if, access_conf=_gpg_stanza(homes)
    ).start()
    _attack_ours(pair, server, wire, GPG_PREFIX, 1)
    assert CLIENT_IP in nft_set(pair.server)
    assert ATTACKER_IP not in nft_set(pair.server)
    assert f"for {ATTACKER_IP}" not in server.log()


def _logged(daemon: OurFwknopd, text: str, count: int) -> bool:
    """Whether ``text`` comes to be in the daemon's log ``count`` times."""
    return wait_for(lambda: daemon.log().count(text) == count, timeout=30)


def _digest_cache(path: Path) -> set[str]:
    return {
        line.split()[0]
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


@pytest.mark.gpg
def test_fwknopd_grants_every_variant_and_shares_our_digest_of_the_original(
    pair: NetPair, homes: GpgHomes, tmp_path: Path
) -> None:
    """The C fwknopd (C too: issue 11): each variant is a new packet; the digests we share."""
    home = tmp_path / "home"
    originals = list(_rijndael_packets(home).values())
    gpg_wire, _ = fwknop_test_packet(
        ["-A", "tcp/22", "-s", "-D", SERVER_IP, *_gpg_args(homes)], home,
        self_decrypt_may_fail=True,
    )  # fmt: skip
    originals.append(gpg_wire)
    drop_policy_iptables(pair.server)
    access = RIJNDAEL_STANZA + _gpg_stanza(homes)
    # it grants every variant, one iptables run after another: on a loaded machine the last
    # is taken minutes after the packets were made
    c = RealFwknopd(
        pair.server, tmp_path / "c", interface=pair.server_if, access_conf=access,
        conf_extra="MAX_SPA_PACKET_AGE 3600;\n",
    )  # fmt: skip
    c.start()
    cache = tmp_path / "c" / "digest.cache"
    sent: list[str] = []
    refused_by_gpgme = ""
    for wire in originals:
        prefix = GPG_PREFIX if wire is gpg_wire else RIJNDAEL_PREFIX
        variants = _variants(wire, prefix)
        if prefix == GPG_PREFIX:
            variants |= gpg_reframings(wire)
            refused_by_gpgme = variants.pop("zeros")
        c.feed(pair, [wire])  # as fast as it takes them: its capture drops a backlog
        c.feed(pair, list(variants.values()), source=ATTACKER_IP)
        sent += [wire, *variants.values()]
    c.feed(pair, [refused_by_gpgme], source=ATTACKER_IP)
    expected = {replay_digest(text) for text in sent}
    # fwknopd caches a digest once a packet decrypts and is new: every variant was
    assert wait_for(
        lambda: cache.exists() and _digest_cache(cache) >= expected,
        interval=0.2,
        progress=c.packets_seen,
    ), c.log()[-3000:]
    # GPGME (unlike the gpg command) stops at trailing zero bytes: "Bad GPG signature"
    assert c.wait_log(
        f"[{ATTACKER_IP}] (stanza #2) Error creating fko context: Bad GPG signature"
    ), c.log()[-3000:]
    assert replay_digest(refused_by_gpgme) not in _digest_cache(cache)
    assert len(expected) == len(sent)
    assert c.wait_log(f"Added access rule to FWKNOP_INPUT for {ATTACKER_IP}"), c.log()[-3000:]
    assert any(f"-s {ATTACKER_IP}/32" in r for r in c.iptables_rules())  # logged once it is in
    # the digest of the text as fwknopd takes it is the one ours computes for the original
    gpg_key = GpgDecryption(GnupgBackend(str(homes.server)))
    for wire in originals:
        opened = open_packet(wire, gpg_key if wire is gpg_wire else KEY)
        assert opened.replay_digests[0] in _digest_cache(cache)
    c.stop()

    # ours on the C fwknopd's files: its cache imported, the same packets refused
    ours = OurFwknopd.on_files(pair.server, tmp_path / "ours", c.conf, c.access).start()
    assert f"imported {len(expected)} digests from fwknopd's cache" in ours.log()
    for wire in originals:
        stanza = 2 if wire is gpg_wire else 1
        prefix = GPG_PREFIX if stanza == 2 else RIJNDAEL_PREFIX
        reencoded = _variants(wire, prefix)
        marker = NOT_CANONICAL.format(stanza)
        target = ours.log().count(marker) + len(reencoded)
        pair.send_udp([wire, *reencoded.values()], source=ATTACKER_IP, interval=0.05)
        assert _logged(ours, marker, target), ours.log()
    # a GnuPG original is refused after gpg ran in the pool: its line may follow the variants'
    assert wait_for(
        lambda: (
            ours.log().count(REPLAYED.format(1)) + ours.log().count(REPLAYED.format(2))
            == len(originals)
        )
    ), ours.log()
    assert f"for {ATTACKER_IP}" not in ours.log()
    assert not any(f"-s {ATTACKER_IP}/32" in r for r in ours.ns.run(["iptables-save"]).stdout
                   .decode().splitlines())  # fmt: skip
