"""fwknop knock: mode = "knock" profiles build and send the 1.x sequences the spec describes."""

from __future__ import annotations

import io
import json
import socket
import threading
from typing import Any

import pytest

from fwknop_core import KnockStep, RijndaelKey
from fwknop_tui import sequence
from fwknop_tui.cli import main
from fwknop_tui.errors import ExitCode
from fwknop_tui.sequence import plan_sequence, send_knocks
from fwknop_tui.wallet.keys import ProfileKeys
from fwknop_tui.wallet.profiles import Profile, check_profile
from fwknop_tui.wallet.secrets import MemoryStore
from tests.helpers import lkdecode
from tests.helpers.legacy import argv_value, case, cipher_ports
from tests.helpers.udp_sinks import udp_sinks

ENCRYPTED = {"host": "198.18.5.2", "mode": "knock", "key_format": "passphrase"}


def _run(
    args: list[str], memory: MemoryStore, capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(args, secrets=memory)
    out, err = capsys.readouterr()
    return code, out, err


def _keys(passphrase: str) -> ProfileKeys:
    return ProfileKeys(rijndael=RijndaelKey.from_passphrase(passphrase))


@pytest.mark.parametrize(
    "case_id", ["enc-basic-root", "enc-user-bob-offset40000", "enc-user-25chars"]
)
def test_our_plan_reproduces_the_recorded_1x_sequence(case_id: str) -> None:
    c = case(case_id)
    table: dict[str, Any] = ENCRYPTED | {
        "access": [argv_value(c, "-A")],
        "allow_ip": argv_value(c, "-a"),
        "username": c["client_user"],
        "knock_offset": c["port_offset"],
    }
    profile = Profile.from_table("p", table)
    plan, request = plan_sequence(
        profile, _keys(c["key"]), profile.allow_ip, salt=bytes.fromhex(c["salt_hex"])
    )
    assert [s.port for s in plan] == cipher_ports(c)
    assert {s.proto_name for s in plan} == {"tcp"}
    assert request == f"{c['expected']['proto']}/{c['expected']['port']}"


def test_rotate_proto_sends_the_odd_knocks_as_udp_as_recorded() -> None:
    c = case("enc-rotate-proto")
    profile = Profile.from_table(
        "p", ENCRYPTED | {"allow_ip": "198.18.5.1", "username": "root", "knock_rotate_proto": True}
    )
    plan, _ = plan_sequence(
        profile, _keys(c["key"]), "198.18.5.1", salt=bytes.fromhex(c["salt_hex"])
    )
    assert [[s.proto_name, s.port] for s in plan] == c["knocks"]


def test_a_shared_profile_sends_its_steps() -> None:
    c = case("shared-mixed")
    steps = c["rc_line"].split(": ", 1)[1]
    profile = Profile.from_table("p", {"host": "h", "mode": "knock", "knock_sequence": steps})
    plan, request = plan_sequence(profile, ProfileKeys(), "0.0.0.0")
    assert [[s.proto_name, s.port] for s in plan] == c["knocks"]
    assert request == steps
    assert profile.key_slots() == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"key_format": "base64"}, "key_format", "passphrase"),
        ({"access": ["tcp/22", "tcp/80"]}, "access", "exactly one"),
        ({"encryption": "gpg", "gpg_recipient": "X"}, "encryption", "its own 1.x encryption"),
        ({"server_command": "reboot"}, "server_command", "command"),
        ({"knock_sequence": ["tcp/1"], "knock_rotate_proto": True}, "knock_rotate_proto", "only"),
        ({"mode": "spa", "knock_sequence": ["tcp/1"]}, "knock_sequence", 'mode = "knock"'),
        ({"knock_offset": 65281}, "knock_offset", "from 1 to 65280"),
        ({"knock_delay": 61}, "knock_delay", "from 0 to 60"),
        ({"knock_sequence": ["tcp/1", "sctp/2"]}, "knock_sequence", "sctp/2"),
        ({"mode": "pcap"}, "mode", "spa or knock"),
    ],
)
def test_knock_profiles_refuse_what_a_sequence_cannot_carry(
    changes: dict[str, Any], field: str, message: str
) -> None:
    profile, problems = check_profile("p", ENCRYPTED | changes)
    assert profile is None
    assert any(f == field and message in m for f, m in problems), problems


def test_an_encrypted_knock_profile_needs_only_its_key() -> None:
    profile = Profile.from_table("p", ENCRYPTED)
    assert profile.key_slots() == ["rijndael"]
    assert profile.knocks_sequence
    assert not Profile.from_table("q", {"host": "h"}).knocks_sequence


def test_fwknop_knock_dry_run_prints_knocks_the_independent_decoder_reads(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        ["knock", "-D", "127.0.0.1", "-A", "udp/53", "-s", "--key-format", "passphrase",
         "-U", "longusername1", "--offset", "40000", "--keys-stdin", "--dry-run"],
        memory, capsys, stdin="testkey1\n",
    )  # fmt: skip
    assert code == ExitCode.OK, err
    knocks = out.split()
    assert len(knocks) == 48
    ports = [int(k.split("/")[1]) for k in knocks]
    got = lkdecode.decode(ports, "testkey1", offset=40000, nports=48)
    assert (got["allow_ip"], got["proto"], got["port"], got["user"]) == (
        "0.0.0.0", 17, 53, "longusername1"
    )  # fmt: skip
    assert "encrypted sequence for udp/53" in err and "allow 0.0.0.0" in err


def test_fwknop_knock_saved_shared_profile_json(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(
        ["add", "old", "-D", "127.0.0.1", "--mode", "knock", "--shared-sequence",
         "tcp/5501,udp/5502,icmp"], memory, capsys,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    code, out, err = _run(["knock", "old", "--dry-run", "--json"], memory, capsys)
    assert code == ExitCode.OK, err
    result = json.loads(out)
    assert result["packet"] == "tcp/5501 udp/5502 icmp"
    assert result["message_type"] == "shared sequence"
    assert [s["stage"] for s in result["stages"]] == ["keys", "resolve", "build"]


def test_a_short_key_is_refused_as_the_1x_client_refused_it(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(
        ["knock", "-D", "127.0.0.1", "-A", "tcp/22", "-s", "--key-format", "passphrase",
         "--keys-stdin", "--dry-run"], memory, capsys, stdin="short\n",
    )  # fmt: skip
    assert code != ExitCode.OK
    assert "at least 8" in err
    assert "short" not in err.replace("at least", "")


def test_udp_knocks_reach_local_sockets_in_order(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with udp_sinks(3) as socks:
        steps = ",".join(f"udp/{s.getsockname()[1]}" for s in socks)
        code, _out, err = _run(
            ["knock", "-D", "127.0.0.1", "--shared-sequence", steps, "--time-delay", "0"],
            memory, capsys,
        )  # fmt: skip
        assert code == ExitCode.OK, err
        assert [s.recv(16) for s in socks] == [b"0", b"0", b"0"]


def test_send_loop_spacing_and_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[KnockStep] = []
    monkeypatch.setattr(sequence, "_send_one", lambda step, af, addr: sent.append(step))
    slept: list[float] = []
    plan = [KnockStep(6, p) for p in (1, 2, 3, 4)]
    assert send_knocks(plan, socket.AF_INET, "x", delay=1.5, sleep=slept.append) == 4
    assert slept == [1.5, 1.5, 1.5]  # between knocks, not after the last
    cancel = threading.Event()
    progress: list[tuple[int, int]] = []

    def on_knock(done: int, total: int) -> None:
        progress.append((done, total))
        if done == 2:
            cancel.set()

    sent.clear()
    assert send_knocks(plan, socket.AF_INET, "x", delay=0.01, cancel=cancel, on_knock=on_knock) == 2
    assert progress == [(1, 4), (2, 4)]


def test_server_stanza_of_a_knock_profile_is_a_1x_stanza_our_collector_grants(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from fwknop_server.knock import Collector, Grant, Knock

    from tests.helpers.legacy import rule_from_1x

    key_file = tmp_path / "k"
    key_file.write_text("stanza-secret-1\n")
    key_file.chmod(0o600)
    code, _out, err = _run(
        ["add", "legacy", "-D", "127.0.0.1", "--mode", "knock", "-A", "udp/53", "-s",
         "--key-format", "passphrase", "--key-file", str(key_file), "--offset", "40000",
         "-U", "bob"], memory, capsys,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    code, stanza, err = _run(["server-stanza", "legacy"], memory, capsys)
    assert code == ExitCode.OK, err
    assert "ENCRYPT_SEQUENCE;\n" in stanza
    assert "PORT_OFFSET: 40000;" in stanza
    body = "\n".join(ln for ln in stanza.splitlines()[2:] if ln != "ENCRYPT_SEQUENCE;")
    rule = rule_from_1x(body)
    code, out, err = _run(["knock", "legacy", "--dry-run"], memory, capsys)
    assert code == ExitCode.OK, err
    import ipaddress

    src = ipaddress.ip_address("198.18.5.1")
    knocks = [
        Knock(src, i * 0.01, 6 if k.startswith("tcp") else 17, int(k.split("/")[1]), i, i)
        for i, k in enumerate(out.split())
    ]
    collector = Collector([rule])
    (grant,) = [d for k in knocks for d in collector.feed(k)]
    assert isinstance(grant, Grant), grant
    assert grant.ports == {("udp", 53)} and grant.username == b"bob"
