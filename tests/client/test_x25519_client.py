"""The client's x25519 profiles: fields, keygen, the stanza, send, share (in-memory keyring)."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from fwknop_core import (
    InvalidPacket,
    RejectReason,
    X25519Keyring,
    X25519PrivateKey,
    X25519PublicKey,
    extract_http_spa,
)
from fwknop_tui.errors import ExitCode
from fwknop_tui.wallet.profiles import Profile, check_profile
from fwknop_tui.wallet.secrets import MemoryStore
from fwknop_tui.wallet.validate import FieldError

from .test_cli import _run

SERVER = X25519PrivateKey(bytes(range(32)))
PUB = SERVER.public_key.to_text()


def _private(memory: MemoryStore, name: str) -> X25519PrivateKey:
    stored = memory.get_many(name, ["x25519"])["x25519"]
    assert stored is not None and stored.startswith("x25519-priv:")
    return X25519PrivateKey.from_text(stored)


def _server_for(memory: MemoryStore, name: str) -> X25519Keyring[str]:
    return X25519Keyring(SERVER, [(_private(memory, name).public_key, name)])


@pytest.fixture
def home(memory: MemoryStore, capsys: pytest.CaptureFixture[str]) -> str:
    code, _out, err = _run(
        [
            "add", "home", "-D", "127.0.0.1", "-A", "tcp/22", "-a", "198.18.0.2",
            "--server-type", "fwknop-tui", "--set", "encryption=x25519",
            "--server-public-key", PUB,
        ],
        memory,
        capsys,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    return "home"


@pytest.fixture
def keyed(home: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]) -> str:
    """``home`` after ``fwknop keygen --profile home``."""
    code, _out, err = _run(["keygen", "--profile", home], memory, capsys)
    assert code == ExitCode.OK, err
    return home


# -- the profile ----------------------------------------------------------------------------


def test_an_x25519_profile_aimed_at_the_c_fwknopd_is_refused_with_the_reason() -> None:
    with pytest.raises(FieldError) as refused:
        Profile.from_table("c", {"host": "h", "encryption": "x25519", "server_public_key": PUB})
    assert refused.value.field == "encryption"
    assert "the C fwknopd 2.6 cannot read it" in refused.value.message
    assert 'server_type = "fwknop-tui"' in refused.value.message


def test_an_x25519_profile_needs_the_servers_public_key() -> None:
    profile, problems = check_profile(
        "p", {"host": "h", "encryption": "x25519", "server_type": "fwknop-tui"}
    )
    assert profile is None
    assert [f for f, _m in problems] == ["server_public_key"]
    assert "fwknopd --key-gen-server" in problems[0][1]


def test_the_server_key_field_takes_a_public_key_only() -> None:
    table = {"host": "h", "encryption": "x25519", "server_type": "fwknop-tui"}
    good = Profile.from_table("p", table | {"server_public_key": "  " + PUB + " "})
    assert good.server_public_key == PUB and good.key_slots() == ["x25519"]
    with pytest.raises(FieldError, match="private key") as refused:
        Profile.from_table("p", table | {"server_public_key": SERVER.to_text()})
    assert SERVER.to_text() not in refused.value.message
    with pytest.raises(FieldError, match="x25519-pub:"):
        Profile.from_table("p", table | {"server_public_key": "AAAA"})


def test_the_example_x25519_profile_is_valid() -> None:
    from fwknop_tui.wallet.profiles import ProfileStore

    example = ProfileStore(Path(__file__).resolve().parents[2] / "profiles.example.toml")
    profile = example.get("home-x25519")
    assert profile.uses_x25519 and profile.key_slots() == ["x25519"]


# -- keygen, the stanza, show ----------------------------------------------------------------


def test_keygen_stores_the_private_key_and_prints_only_public_keys(
    home: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["keygen", "--profile", home], memory, capsys)
    assert code == ExitCode.OK, err
    private = _private(memory, home)
    assert f"CLIENT_PUBLIC_KEY           {private.public_key.to_text()}" in out.splitlines()
    assert PUB in out  # the server key the profile expects, for the administrator to check
    assert "x25519-priv" not in out + err
    assert "only your public key: it is not secret" in err
    assert "KEY_BASE64" not in out and "HMAC" not in out
    code, _out, err = _run(["keygen", "--profile", home], memory, capsys)
    assert code == ExitCode.USAGE and "already has an x25519 key" in err
    assert _private(memory, home) == private
    assert _run(["keygen", "--profile", home, "--force"], memory, capsys)[0] == ExitCode.OK
    assert _private(memory, home) != private


def test_server_stanza_names_the_client_by_public_key(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["server-stanza", keyed], memory, capsys)
    assert code == ExitCode.OK
    line = next(ln for ln in out.splitlines() if ln.startswith("CLIENT_PUBLIC_KEY"))
    assert X25519PublicKey.from_text(line.split()[1]) == _private(memory, keyed).public_key
    assert "can be sent in the clear" in err and "x25519-priv" not in out


def test_show_reveals_the_private_key_only_when_asked(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = _run(["show", keyed, "--json"], memory, capsys)
    assert code == ExitCode.OK
    shown = json.loads(out)
    assert shown["keys"] == {"x25519": "keyring"}
    assert shown["profile"]["server_public_key"] == PUB
    code, out, _err = _run(["show", keyed, "--reveal", "x25519"], memory, capsys)
    assert code == ExitCode.OK and out.strip() == _private(memory, keyed).to_text()


def test_a_missing_key_says_how_to_make_one(
    home: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(["send", home, "--dry-run"], memory, capsys)
    assert code == ExitCode.KEY_MISSING
    assert "no X25519 private key" in err and "fwknop keygen --profile home" in err


# -- knocking -----------------------------------------------------------------------------------


def test_dry_run_builds_a_packet_the_server_keyring_opens(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["send", keyed, "--dry-run", "-f", "90"], memory, capsys)
    assert code == ExitCode.OK, err
    opened = _server_for(memory, keyed).open(out.strip(), now=time.time(), max_age=120)
    assert opened.message.message == "198.18.0.2,tcp/22"
    assert opened.message.client_timeout == 90
    assert opened.owners == (keyed,)


def test_udp_and_http_sends_reach_a_local_socket_and_open(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _server_for(memory, keyed)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        code, _out, err = _run(["send", keyed, "-p", str(port)], memory, capsys)
        data = sock.recv(2048)
    assert code == ExitCode.OK, err
    assert server.open(data, now=time.time(), max_age=120).message.access[0].port == 22
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        code, _out, err = _run(["send", keyed, "-p", str(port), "-P", "http"], memory, capsys)
        conn, _addr = listener.accept()
        with conn:
            conn.settimeout(10)
            request = conn.recv(4096)
    assert code == ExitCode.OK, err
    http = extract_http_spa(request)
    assert http is not None
    assert server.open(http.data, now=time.time(), max_age=120).message.username


def test_an_ipv6_allow_ip_goes_to_our_server(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["send", keyed, "--dry-run", "-a", "2001:db8::7"], memory, capsys)
    assert code == ExitCode.OK, err
    opened = _server_for(memory, keyed).open(out.strip())
    assert opened.message.allow_ip == "2001:db8::7"


def test_the_key_may_come_from_a_0600_file_a_command_or_stdin(
    home: str,
    memory: MemoryStore,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = X25519PrivateKey.generate()
    server = X25519Keyring(SERVER, [(key.public_key, "file")])
    path = tmp_path / "client.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"# my key\n{key.to_text()}\n# {key.public_key.to_text()}\n".encode())
    os.close(fd)
    code, out, err = _run(["send", home, "--dry-run", "--key-file", str(path)], memory, capsys)
    assert code == ExitCode.OK, err
    assert server.open(out.strip()).owners == ("file",)
    command = f"{sys.executable} -c \"print('{key.to_text()}')\""
    code, out, err = _run(["send", home, "--dry-run", "--key-command", command], memory, capsys)
    assert code == ExitCode.OK, err
    assert server.open(out.strip()).owners == ("file",)
    monkeypatch.setattr(sys, "stdin", io.StringIO(key.to_text() + "\n"))
    code, out, err = _run(["send", home, "--dry-run", "--keys-stdin"], memory, capsys)
    assert code == ExitCode.OK, err
    assert server.open(out.strip()).owners == ("file",)
    monkeypatch.setattr(sys, "stdin", io.StringIO(key.public_key.to_text()))
    code, _out, err = _run(["send", home, "--dry-run", "--keys-stdin"], memory, capsys)
    assert code == ExitCode.KEY_MISSING and "public key" in err


def test_a_packet_for_another_server_key_is_refused_by_ours(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    other = X25519PrivateKey.generate().public_key.to_text()
    code, out, _err = _run(
        ["send", keyed, "--dry-run", "--server-public-key", other], memory, capsys
    )
    assert code == ExitCode.OK
    with pytest.raises(InvalidPacket) as refused:
        _server_for(memory, keyed).open(out.strip())
    assert refused.value.reason is RejectReason.UNKNOWN_KEY_ID


# -- sharing and the C client's files -------------------------------------------------------


def test_share_shows_the_public_key_and_says_it_is_harmless(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["share", keyed, "--text"], memory, capsys)
    assert code == ExitCode.OK
    assert out.split() == ["CLIENT_PUBLIC_KEY", _private(memory, keyed).public_key.to_text()]
    assert "sharing it is harmless" in err and "anyone who sees it" not in err


def test_import_share_and_export_rc_refuse_an_x25519_profile(
    home: str,
    memory: MemoryStore,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("KEY_BASE64: " + "A" * 43 + "="))
    code, _out, err = _run(["import-share", home], memory, capsys)
    assert code == ExitCode.USAGE and "its private key never travels" in err
    assert memory.entries == {}
    code, _out, err = _run(["export-rc", home, "-o", str(tmp_path / "rc")], memory, capsys)
    assert code == ExitCode.USAGE and "the C client cannot send it" in err
    assert not (tmp_path / "rc").exists()


def test_rm_and_rename_carry_the_x25519_entry(
    keyed: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _private(memory, keyed)
    assert _run(["rename", keyed, "lab"], memory, capsys)[0] == ExitCode.OK
    assert _private(memory, "lab") == key
    code, _out, err = _run(["rm", "lab", "--yes"], memory, capsys)
    assert code == ExitCode.OK and "x25519" in err
    assert memory.entries == {}
