"""The x25519 mode through the screen and the pipeline: one lookup, then at most one AEAD.

Configurations are loaded as the daemon loads them (fwknopd.conf naming the
server key file, access.conf naming clients by ``CLIENT_PUBLIC_KEY``), so
the keyring is the one ``settings.load`` builds. The cryptography is counted
per packet (tests/helpers/cryptocount.py, as test_mac_count.py counts MACs):
an unknown key id costs none, a known one exactly one AEAD verification,
whatever the number of stanzas; no client key is derived per packet.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
from fwknop_server.capture.sources import UdpSource
from fwknop_server.processor import Processor
from fwknop_server.replay.sqlite import ReplayCache
from fwknop_server.screen import X25519Way
from fwknop_server.serverkey import write_server_key
from fwknop_server.settings import Options, ServerSettings, load
from fwknop_server.vocab import (
    MUTED,
    Accepted,
    Decision,
    Packet,
    Reason,
    Refused,
    RunCommand,
)

from fwknop_core import (
    MessageType,
    SpaMessage,
    X25519PrivateKey,
    X25519SharedKey,
    build_packet,
    build_x25519_packet,
    encode_http_request,
    generate_keys,
)
from tests.helpers.cryptocount import counting_x25519
from tests.helpers.maccount import counting_macs

NOW = 1_795_268_000
SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
OTHER_DST = ipaddress.ip_address("198.18.0.9")


def _key(label: str) -> X25519PrivateKey:
    return X25519PrivateKey(hashlib.sha256(f"x25519 server test {label}".encode()).digest())


SERVER, ALICE, BOB, CAROL = (_key(n) for n in ("server", "alice", "bob", "carol"))
FWKNOP = generate_keys()
FWKNOP_LINES = (
    f"KEY_BASE64 {FWKNOP.rijndael.to_base64()}\nHMAC_KEY_BASE64 {FWKNOP.hmac.to_base64()}\n"
)


def pub(key: X25519PrivateKey) -> str:
    """``key``'s public key as access.conf names it."""
    return key.public_key.to_text()


def load_settings(tmp_path: Path, access: str, conf: str = "") -> ServerSettings:
    """fwknopd.conf naming a fresh server key file, and ``access``: loaded as the daemon does."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    key_file = tmp_path / "server.key"
    if not key_file.exists():
        write_server_key(key_file, SERVER)
    (tmp_path / "fwknopd.conf").write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n"
        f"SERVER_PRIVATE_KEY_FILE {key_file}\n{conf}"
    )
    (tmp_path / "access.conf").write_text(access)
    options = Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))
    return load(options)


def processor(tmp_path: Path, access: str, conf: str = "", *, replay: bool = True) -> Processor:
    """The pipeline the daemon would build from these files (IPv6 and NAT capable firewall)."""
    settings = load_settings(tmp_path, access, conf)
    store = ReplayCache(None, max_age=120, now=NOW) if replay else None
    return Processor(
        settings.stanzas,
        settings.pipeline_for(ipv6=True, nat=True),
        replay=store,
        keyring=settings.x25519,
    )


def sealed(
    client: X25519PrivateKey,
    access: str = "tcp/22",
    *,
    allow: str = "198.18.0.2",
    server: X25519PrivateKey = SERVER,
    now: int = NOW,
    **fields: object,
) -> bytes:
    """An x25519 access request from ``client`` to ``server``."""
    message = SpaMessage.access_request(allow, access, username="alice", now=now, **fields)  # type: ignore[arg-type]
    return build_x25519_packet(
        message, X25519SharedKey.for_client(client, server.public_key)
    ).encode()


def decide(proc: Processor, data: bytes, *, src: object = SRC, dst: object = DST) -> Decision:
    """``data`` from ``src`` to ``dst`` (UDP 62201), decided at NOW."""
    return proc.process(Packet(data, src, dst, 17, 40000, 62201), NOW)  # type: ignore[arg-type]


def stanza(*keys: X25519PrivateKey, extra: str = "", source: str = "ANY") -> str:
    """A stanza naming ``keys`` (one CLIENT_PUBLIC_KEY line each)."""
    named = "".join(f"CLIENT_PUBLIC_KEY {pub(k)}\n" for k in keys)
    return f"SOURCE {source}\n{named}{extra}\n"


# -- granted ----------------------------------------------------------------------------------


def test_a_client_named_by_its_public_key_is_granted_after_exactly_one_aead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counting_x25519(monkeypatch) as calls:
        proc = processor(tmp_path, stanza(ALICE, extra="FW_ACCESS_TIMEOUT 40"))
        assert calls["derive"] == 1  # at load: the one client's key
        data = sealed(ALICE, "tcp/22,udp/53")
        calls.clear()
        decision = decide(proc, data)
    assert isinstance(decision, Accepted)
    grant = decision.grant
    assert (grant.source, grant.ports, grant.timeout, grant.stanza) == (
        SRC, (("tcp", 22), ("udp", 53)), 40, 1
    )  # fmt: skip
    assert grant.username == "alice" and decision.opened.message.username == "alice"
    assert calls == Counter({"aead": 1})  # no derivation per packet, one verification


def test_capture_screens_the_packet_and_the_pipeline_does_not_open_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counting_x25519(monkeypatch) as calls:
        proc = processor(tmp_path, stanza(ALICE))
        data = sealed(ALICE)
        calls.clear()
        source = UdpSource(0)
        port = source.sock.getsockname()[1]
        packets: list[Packet] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(data, ("127.0.0.1", port))
            for _ in range(200):  # bounded: loopback delivers at once
                packets += source.read(proc.screen.check)
                if packets:
                    break
                time.sleep(0.01)
        source.close()
        (packet,) = packets
        assert isinstance(packet.screened, X25519Way) and packet.screened.opened is not None
        decision = proc.process(packet, NOW)
    assert isinstance(decision, Accepted) and decision.grant.source == SRC
    assert calls == Counter({"aead": 1})


def test_keys_rotate_with_an_overlap_and_a_key_shared_by_stanzas_is_derived_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = (
        stanza(ALICE, BOB, extra="OPEN_PORTS tcp/80")  # both of alice's keys, old and new
        + f"SOURCE ANY\nCLIENT_PUBLIC_KEY {pub(ALICE)}, {pub(CAROL)}\n"  # commas work too
    )
    with counting_x25519(monkeypatch) as calls:
        proc = processor(tmp_path, access)
        assert calls["derive"] == 3  # alice (named twice), bob, carol: each once
        web = [sealed(key, "tcp/80") for key in (ALICE, BOB)]
        ssh = [sealed(key, "tcp/22") for key in (ALICE, BOB)]
        calls.clear()
        for data in web:
            decision = decide(proc, data)
            assert isinstance(decision, Accepted) and decision.grant.stanza == 1
        # stanza 1 names alice but does not open tcp/22; stanza 2 does: one AEAD for both
        decision = decide(proc, ssh[0])
        assert isinstance(decision, Accepted) and decision.grant.stanza == 2
        refused = decide(proc, ssh[1])  # only stanza 1 names bob
        assert isinstance(refused, Refused) and refused.reason is Reason.PORTS
    assert calls == Counter({"aead": 4})


def test_the_policy_is_the_stanzas_as_for_fwknop_packets(tmp_path: Path) -> None:
    extra = (
        "OPEN_PORTS tcp/22, tcp/443\nREQUIRE_USERNAME alice\nMAX_FW_TIMEOUT 60\n"
        "REQUIRE_SOURCE_ADDRESS Y\n"
    )
    proc = processor(tmp_path, stanza(ALICE, extra=extra), "ENABLE_IPT_FORWARDING Y\n")
    timeout = decide(proc, sealed(ALICE, "tcp/443", client_timeout=500))
    assert isinstance(timeout, Accepted) and timeout.grant.timeout == 60  # capped
    assert timeout.grant.message_type is MessageType.CLIENT_TIMEOUT_ACCESS
    cases = {
        Reason.PORTS: sealed(ALICE, "tcp/23"),
        Reason.SOURCE_REQUIRED: sealed(ALICE, allow="0.0.0.0"),
        Reason.COMMAND: build_x25519_packet(
            SpaMessage.command_request("198.18.0.2", "id", username="alice", now=NOW),
            X25519SharedKey.for_client(ALICE, SERVER.public_key),
        ).encode(),
        Reason.STALE: sealed(ALICE, now=NOW - 121),
    }
    for reason, data in cases.items():
        decision = decide(proc, data)
        assert isinstance(decision, Refused) and decision.reason is reason, (reason, decision)
    bob = SpaMessage.access_request("198.18.0.2", "tcp/22", username="bob", now=NOW)
    wrong_user = build_x25519_packet(bob, X25519SharedKey.for_client(ALICE, SERVER.public_key))
    decision = decide(proc, wrong_user.encode())
    assert isinstance(decision, Refused) and decision.reason is Reason.USERNAME


def test_source_address_nat_and_commands_work_as_for_fwknop_packets(tmp_path: Path) -> None:
    access = (
        stanza(ALICE, extra="FORCE_NAT 198.51.100.2 22")
        + stanza(BOB, extra="ENABLE_CMD_EXEC Y")
        + stanza(CAROL)
    )
    proc = processor(tmp_path, access, "ENABLE_IPT_FORWARDING Y\n")
    nat = decide(proc, sealed(ALICE))
    assert isinstance(nat, Accepted) and nat.grant.nat is not None
    assert (str(nat.grant.nat.target), nat.grant.nat.nat_port) == ("198.51.100.2", 22)
    command = SpaMessage.command_request("198.18.0.2", "touch /tmp/x", username="b", now=NOW)
    ran = decide(proc, build_x25519_packet(
        command, X25519SharedKey.for_client(BOB, SERVER.public_key)).encode())  # fmt: skip
    assert isinstance(ran, RunCommand) and ran.argv[-2:] == ("touch", "/tmp/x")
    source = decide(proc, sealed(CAROL, allow="0.0.0.0"), src=ipaddress.ip_address("203.0.113.7"))
    assert isinstance(source, Accepted) and str(source.grant.source) == "203.0.113.7"
    v6 = decide(proc, sealed(CAROL, allow="2001:db8::2", allow_ipv6=True))
    assert isinstance(v6, Accepted) and str(v6.grant.source) == "2001:db8::2"


def test_spa_over_http_carries_an_x25519_packet(tmp_path: Path) -> None:
    proc = processor(tmp_path, stanza(ALICE), "ENABLE_SPA_OVER_HTTP Y\n")
    request = encode_http_request(sealed(ALICE).decode(), host="198.18.0.1")
    decision = decide(proc, request)
    assert isinstance(decision, Accepted) and decision.grant.ports == (("tcp", 22),)


# -- refused before any cryptography ------------------------------------------------------------


def test_an_unknown_key_id_is_one_cached_refusal_without_any_cryptography(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counting_x25519(monkeypatch) as calls, counting_macs(monkeypatch) as macs:
        access = stanza(ALICE) + "".join(
            f"SOURCE ANY\n{FWKNOP_LINES}\n" for _ in range(20)
        )  # fwknop stanzas beside: their HMACs are not asked either
        proc = processor(tmp_path, access)
        stranger = [sealed(CAROL) for _ in range(20)]
        other_server = [sealed(ALICE, server=BOB) for _ in range(5)]  # the id binds the server
        junk = [b"~1" + bytes(b"ABCD"[i % 4] for i in range(150 + n)) for n in range(20)]
        calls.clear()
        macs.made = 0
        refusals = [decide(proc, data) for data in stranger + other_server + junk]
    first = refusals[0]
    assert isinstance(first, Refused) and first.reason is Reason.UNKNOWN_KEY_ID
    assert all(r is first for r in refusals)  # one object: capture can mute a flood of them
    assert not calls and macs.made == 0


def test_another_version_and_a_server_without_clients_are_refused_by_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = processor(tmp_path, stanza(ALICE))
    data = sealed(ALICE)
    version = decide(proc, b"~2" + data[2:])
    assert isinstance(version, Refused) and version.reason is Reason.X25519_VERSION
    plain = processor(tmp_path / "fwknop-only", f"SOURCE ANY\n{FWKNOP_LINES}")
    none = decide(plain, data)
    assert isinstance(none, Refused) and none.reason is Reason.UNKNOWN_KEY_ID
    assert none.detail == "this server has no x25519 clients"
    short = decide(proc, data[:139])
    assert isinstance(short, Refused) and short.reason is Reason.TOO_SHORT


def test_the_stanzas_naming_a_key_are_filtered_by_source_and_destination_before_any_aead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = (
        stanza(ALICE, source="10.0.0.0/8")
        + stanza(BOB, extra="DESTINATION 198.18.0.1")
        + stanza(CAROL, extra="ACCESS_EXPIRE_EPOCH 1000")  # long past
    )
    with counting_x25519(monkeypatch) as calls:
        proc = processor(tmp_path, access, "ENABLE_DESTINATION_RULE Y\n")
        packets = {key: sealed(key) for key in (ALICE, BOB, CAROL)}
        another = sealed(ALICE)
        calls.clear()
        source = decide(proc, packets[ALICE])
        assert isinstance(source, Refused) and source.reason is Reason.NO_STANZA
        assert decide(proc, another) is source  # cached: a flood of them is muted
        destination = decide(proc, packets[BOB], dst=OTHER_DST)
        assert isinstance(destination, Refused) and destination.reason is Reason.DESTINATION
        expired = decide(proc, packets[CAROL])
        assert isinstance(expired, Refused) and expired.reason is Reason.EXPIRED_STANZA
        assert not calls  # none of them was opened
        granted = decide(proc, packets[BOB], dst=DST)
        assert isinstance(granted, Accepted) and granted.grant.destination == DST
    assert calls == Counter({"aead": 1})


# -- refused after one AEAD ---------------------------------------------------------------------


def _retyped(data: bytes, index: int) -> bytes:
    """``data`` with the base64 character at ``index`` (not the last) replaced by another one."""
    other = b"B" if data[index : index + 1] != b"B" else b"C"
    return data[:index] + other + data[index + 1 :]


def test_a_known_key_id_with_a_bad_tag_costs_one_aead_also_among_200_stanzas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for count in (1, 200):
        others = [_key(f"other {i}") for i in range(count - 1)]
        access = stanza(ALICE) + "".join(stanza(k) for k in others)
        with counting_x25519(monkeypatch) as calls:
            proc = processor(tmp_path / str(count), access)
            assert calls["derive"] == count
            good = sealed(ALICE)
            forged = [_retyped(good, 40), _retyped(good, len(good) - 5)]
            calls.clear()
            refusals = [decide(proc, data) for data in forged * 10]
        assert all(isinstance(r, Refused) and r.reason is Reason.AEAD for r in refusals)
        assert len({id(r) for r in refusals}) == 1  # cached per client: mutable under a flood
        assert calls == Counter({"aead": len(refusals)}), count


def test_a_packet_for_client_a_with_client_bs_key_id_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counting_x25519(monkeypatch) as calls:
        proc = processor(tmp_path, stanza(ALICE) + stanza(BOB))
        alices = sealed(ALICE)
        bobs_id = X25519SharedKey.for_client(BOB, SERVER.public_key).key_id_text.encode()
        calls.clear()
        decision = decide(proc, alices[:2] + bobs_id + alices[14:])
    assert isinstance(decision, Refused) and decision.reason is Reason.AEAD
    assert decision.stanza == 2  # bob's stanza was asked, and refused it
    assert calls == Counter({"aead": 1})


def test_every_changed_byte_is_refused_and_never_raises(tmp_path: Path) -> None:
    proc = processor(tmp_path, stanza(ALICE) + stanza(BOB), replay=False)
    good = sealed(ALICE)
    seen: set[Reason] = set()
    for place in range(len(good)):
        for flip in (1, 0x20):
            data = good[:place] + bytes([good[place] ^ flip]) + good[place + 1 :]
            decision = decide(proc, data)
            assert isinstance(decision, Refused), (place, flip)
            seen.add(decision.reason)
    assert Reason.AEAD in seen and Reason.UNKNOWN_KEY_ID in seen
    assert isinstance(decide(proc, good), Accepted)  # the control


# -- replay and age ---------------------------------------------------------------------------


def test_a_replayed_packet_is_refused_and_a_stale_one_still_remembered(tmp_path: Path) -> None:
    proc = processor(tmp_path, stanza(ALICE))
    data = sealed(ALICE)
    assert isinstance(decide(proc, data), Accepted)
    replay = decide(proc, data)
    assert isinstance(replay, Refused) and replay.reason is Reason.REPLAY
    stale = sealed(ALICE, now=NOW - 500)
    first = decide(proc, stale)
    assert isinstance(first, Refused) and first.reason is Reason.STALE
    again = decide(proc, stale)
    assert isinstance(again, Refused) and again.reason is Reason.REPLAY  # as for fwknop packets
    assert len(proc.replay) == 2


# -- both formats, one server -------------------------------------------------------------------


def test_a_stanza_with_fwknop_keys_and_a_client_key_takes_both_and_never_confuses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = f"SOURCE ANY\n{FWKNOP_LINES}CLIENT_PUBLIC_KEY {pub(ALICE)}\nOPEN_PORTS tcp/22\n"
    with counting_x25519(monkeypatch) as calls, counting_macs(monkeypatch) as macs:
        proc = processor(tmp_path, access)
        message = SpaMessage.access_request("198.18.0.2", "tcp/22", username="alice", now=NOW)
        rijndael = build_packet(message, FWKNOP.rijndael, hmac_key=FWKNOP.hmac).encode()
        x25519 = sealed(ALICE)
        calls.clear()
        macs.made = 0
        fwknop_decision = decide(proc, rijndael)
        assert isinstance(fwknop_decision, Accepted) and macs.made == 1 and not calls
        macs.made = 0
        x_decision = decide(proc, x25519)
        assert isinstance(x_decision, Accepted) and macs.made == 0
        assert calls == Counter({"aead": 1})
    # the same message, each way: one is not the other
    assert type(fwknop_decision.opened).__name__ == "OpenedPacket"
    assert type(x_decision.opened).__name__ == "X25519Opened"


def test_a_flood_of_unknown_ids_is_muted_and_counted_while_a_knock_gets_through(
    tmp_path: Path,
) -> None:
    import asyncio

    from fwknop_server.daemon import Daemon
    from fwknop_server.firewall.logonly import LogOnly

    settings = load_settings(tmp_path, stanza(ALICE))
    options = Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    daemon = Daemon(options, settings, firewall=firewall, clock=lambda: NOW)
    junk = Packet(sealed(CAROL), SRC, DST, 17, 40000, 62201)
    knock = Packet(sealed(ALICE), SRC, DST, 17, 40000, 62201)

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        daemon.dispatch.handle_all([junk] * 30, NOW)  # past the log rate: muted
        check = daemon.processor.screen.check
        assert check(junk.payload, SRC) is MUTED  # capture counts the rest itself
        daemon.dispatch.handle_all([junk] * 500 + [knock], NOW)

    asyncio.run(run())
    assert daemon.refusals.counts == {"unknown_key_id": 531, "granted": 1}  # the check too
    assert (SRC, "tcp", 22) in firewall.open
