"""The x25519 mode's configuration: CLIENT_PUBLIC_KEY in access.conf, SERVER_PRIVATE_KEY_FILE.

Problems name the file and line and never quote a key; the keyring is built
once per load (each client's key derived once); a reload that adds a client
key lets it in, one that removes a key refuses it, without a restart and with
open grants kept; a reload whose key file is open to others is refused and
the running keys stay. The server key and the derived keys never reach a log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
from pathlib import Path

import pytest
from fwknop_server.access import load_access
from fwknop_server.cli import main
from fwknop_server.daemon import Daemon
from fwknop_server.errors import ConfigError
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.serverkey import write_server_key
from fwknop_server.settings import Options, load
from fwknop_server.vocab import Packet

import fwknop_core._x25519 as x25519_module
from fwknop_core import (
    SpaMessage,
    X25519PrivateKey,
    X25519PublicKey,
    X25519SharedKey,
    build_x25519_packet,
)
from tests.helpers.cryptocount import counting_x25519

NOW = 1_795_268_000
SRC = ipaddress.ip_address("198.18.0.2")


def _key(label: str) -> X25519PrivateKey:
    return X25519PrivateKey(hashlib.sha256(f"x25519 config test {label}".encode()).digest())


SERVER, ALICE, BOB = _key("server"), _key("alice"), _key("bob")
A, B = ALICE.public_key.to_text(), BOB.public_key.to_text()


def _files(tmp_path: Path, access: str, conf: str | None = None) -> Options:
    key_file = tmp_path / "server.key"
    if not key_file.exists():
        write_server_key(key_file, SERVER)
    if conf is None:
        conf = f"SERVER_PRIVATE_KEY_FILE {key_file}\n"
    (tmp_path / "fwknopd.conf").write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nFWKNOP_CONF_DIR {tmp_path}/etc\n{conf}"
    )
    (tmp_path / "access.conf").write_text(access)
    return Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))


def _problems(tmp_path: Path, access: str, conf: str | None = None) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(_files(tmp_path, access, conf))
    return [str(p) for p in refused.value.problems]


# -- access.conf -------------------------------------------------------------------------------


def test_a_stanza_may_name_only_client_keys_several_and_in_an_include_keys_file(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "bob.keys"
    keys.write_text(f"CLIENT_PUBLIC_KEY {B}\nOPEN_PORTS tcp/1\n")  # only key names are taken
    path = tmp_path / "access.conf"
    path.write_text(
        f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\nCLIENT_PUBLIC_KEY {B}, {A}\n"
        f"SOURCE 198.18.0.0/24\n%include_keys {keys}\nOPEN_PORTS tcp/22\n"
    )
    first, second = load_access([path])
    assert [c.public for c in first.client_keys] == [ALICE.public_key, BOB.public_key]
    assert [(c.path, c.line) for c in first.client_keys] == [(path, 2), (path, 3)]
    assert first.key is None and first.gpg is None and first.hmac_key is None
    assert [c.public for c in second.client_keys] == [BOB.public_key]
    assert second.client_keys[0].where() == f"{keys}:1"
    assert second.open_ports == frozenset({("tcp", 22)})


def test_bad_client_keys_are_named_by_line_and_never_quoted(tmp_path: Path) -> None:
    private = ALICE.to_text()
    short = "x25519-pub:" + base64.b64encode(b"k" * 16).decode()
    path = tmp_path / "access.conf"
    path.write_text(
        f"SOURCE ANY\nCLIENT_PUBLIC_KEY {private}\n"
        f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}, {short}\n"
        "SOURCE ANY\nCLIENT_PUBLIC_KEY __CHANGEME__\n"
        f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A[11:]}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_access([path])
    lines = str(refused.value).splitlines()
    assert lines[0].startswith(f"{path}:2: CLIENT_PUBLIC_KEY: that is a private key")
    assert lines[1] == f"{path}:4: CLIENT_PUBLIC_KEY: an X25519 public key must be 32 bytes, not 16"
    assert lines[2].startswith(f"{path}:6: CLIENT_PUBLIC_KEY is still __CHANGEME__")
    assert lines[3] == (
        f"{path}:8: CLIENT_PUBLIC_KEY: an X25519 public key must be written "
        "x25519-pub:<base64 of 32 bytes>"
    )
    assert len(lines) == 4  # no "no keys for this stanza" on top of them
    for key_text in (private, private[12:], short[11:], A[11:]):
        assert key_text not in str(refused.value)


# -- the server key and the keyring -------------------------------------------------------------


def test_the_keyring_is_built_once_per_load_with_each_client_key_derived_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\nSOURCE ANY\nCLIENT_PUBLIC_KEY {A}, {B}\n"
    with counting_x25519(monkeypatch) as calls:
        settings = load(_files(tmp_path, access))
    assert calls["derive"] == 2
    keyring = settings.x25519
    assert keyring is not None and keyring.server == SERVER.public_key
    owners = {c.shared.client: [s.number for s in c.owners] for c in keyring}
    assert owners == {ALICE.public_key: [1, 2], BOB.public_key: [2]}


def test_a_server_without_client_keys_needs_and_reads_no_key_file(tmp_path: Path) -> None:
    access = f"SOURCE ANY\nKEY_BASE64 {'a' * 43}=\n"
    settings = load(_files(tmp_path, access, conf=""))  # the default file does not exist
    assert settings.x25519 is None


def test_client_keys_without_the_server_key_say_how_to_make_one(tmp_path: Path) -> None:
    problems = _problems(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n", conf="")
    default = tmp_path / "etc" / "server_x25519.key"  # $FWKNOP_CONF_DIR/server_x25519.key
    assert problems == [
        f"{default}: does not exist: make one with fwknopd --key-gen-server FILE",
        f"{tmp_path / 'access.conf'}:2: CLIENT_PUBLIC_KEY needs the server's x25519 key: make "
        "it with fwknopd --key-gen-server, or name it in fwknopd.conf (SERVER_PRIVATE_KEY_FILE)",
    ]


def test_a_named_server_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "server.key"
    write_server_key(key_file, SERVER)
    key_file.chmod(0o644)
    problems = _problems(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n")
    assert problems == [f"{key_file}: is open to other users (mode 0644): chmod 600 {key_file}"]


def test_a_low_order_client_key_is_named_by_line(tmp_path: Path) -> None:
    low = X25519PublicKey(bytes(32)).to_text()
    problems = _problems(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\nCLIENT_PUBLIC_KEY {low}\n")
    assert problems == [
        f"{tmp_path / 'access.conf'}:3: CLIENT_PUBLIC_KEY is not a usable X25519 public key "
        "(a low-order point): ask for the real one"
    ]


def test_two_client_keys_with_one_key_id_are_named_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(x25519_module, "key_id", lambda client, server: b"\0" * 9)
    access = f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\nSOURCE ANY\nCLIENT_PUBLIC_KEY {A}, {B}\n"
    path = tmp_path / "access.conf"
    assert _problems(tmp_path, access) == [
        f"{path}:4: CLIENT_PUBLIC_KEY has the same key id as the key at {path}:2: drop one of them"
    ]


def test_dump_config_shows_the_public_keys_and_their_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = _files(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n")
    argv = ["-c", str(options.config_file), "-a", str(tmp_path / "access.conf"), "-D"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    key_id = X25519SharedKey.for_server(SERVER, ALICE.public_key).key_id_text
    assert f"x25519 server public key    {SERVER.public_key.to_text()}" in out
    assert f"  CLIENT_PUBLIC_KEY         {A} (key id {key_id})" in out
    assert "x25519-priv" not in out and SERVER.to_text()[12:] not in out


# -- SIGHUP ------------------------------------------------------------------------------------


def _daemon(tmp_path: Path, access: str) -> tuple[Daemon, LogOnly]:
    options = _files(tmp_path, access)
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall, clock=lambda: NOW), firewall


def _knock(key: X25519PrivateKey, port: int, *, tamper: bool = False) -> Packet:
    message = SpaMessage.access_request("198.18.0.2", f"tcp/{port}", username="u", now=NOW)
    shared = X25519SharedKey.for_client(key, SERVER.public_key)
    data = build_x25519_packet(message, shared).encode()
    if tamper:  # the last character of the sealed part: a bad tag (still canonical base64)
        data = data[:-2] + (b"A" if data[-2:-1] != b"A" else b"Q") + data[-1:]
    return Packet(data, SRC, None, 17, 1, 62201)


def test_a_reload_that_adds_a_client_key_lets_it_in_and_keeps_open_grants(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, firewall = _daemon(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n")

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        daemon.dispatch.handle_all([_knock(ALICE, 22), _knock(BOB, 23)], NOW)
        assert (SRC, "tcp", 22) in firewall.open and (SRC, "tcp", 23) not in firewall.open
        (tmp_path / "access.conf").write_text(f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}, {B}\n")
        daemon.reload()
        daemon.dispatch.handle_all([_knock(BOB, 23)], NOW)

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    assert {(SRC, "tcp", 22), (SRC, "tcp", 23)} <= set(firewall.open)
    assert "1 grant(s) stay open" in caplog.text
    bobs_id = X25519SharedKey.for_server(SERVER, BOB.public_key).key_id_text
    assert f"(user u, stanza #1, x25519 key id {bobs_id}): opening tcp/23" in caplog.text
    assert daemon.refusals.counts == {"granted": 2, "unknown_key_id": 1}


def test_a_reload_that_removes_a_client_key_refuses_it_and_keeps_its_open_grant(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, firewall = _daemon(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}, {B}\n")

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        daemon.dispatch.handle_all([_knock(ALICE, 22), _knock(BOB, 23)], NOW)
        assert {(SRC, "tcp", 22), (SRC, "tcp", 23)} <= set(firewall.open)
        (tmp_path / "access.conf").write_text(f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n")
        daemon.reload()
        daemon.dispatch.handle_all([_knock(BOB, 24), _knock(ALICE, 25)], NOW)

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    assert "configuration reloaded: 1 access stanza(s); 2 grant(s) stay open" in caplog.text
    assert {(SRC, "tcp", 22), (SRC, "tcp", 23), (SRC, "tcp", 25)} == set(firewall.open)
    assert daemon.refusals.counts == {"granted": 3, "unknown_key_id": 1}
    keyring = daemon.settings.x25519
    assert keyring is not None and [c.shared.client for c in keyring] == [ALICE.public_key]


def test_a_reload_with_the_key_file_open_to_others_is_refused_and_the_running_keys_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, firewall = _daemon(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n")
    key_file = tmp_path / "server.key"

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        key_file.chmod(0o640)
        (tmp_path / "access.conf").write_text(f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}, {B}\n")
        daemon.reload()
        daemon.dispatch.handle_all([_knock(ALICE, 22), _knock(BOB, 23)], NOW)

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    assert (
        f"reload refused, keeping the running configuration: {key_file}: is open to other "
        f"users (mode 0640): chmod 600 {key_file}"
    ) in caplog.text
    assert set(firewall.open) == {(SRC, "tcp", 22)}  # alice, by the keyring that was running
    assert daemon.refusals.counts == {"granted": 1, "unknown_key_id": 1}


def test_the_server_key_and_the_derived_keys_never_reach_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon, _firewall = _daemon(tmp_path, f"SOURCE ANY\nCLIENT_PUBLIC_KEY {A}\n")
    key_file = tmp_path / "server.key"
    shared = X25519SharedKey.for_server(SERVER, ALICE.public_key)
    secrets = [SERVER.to_text()[12:], SERVER.secret.hex(), shared.key.hex(),
               base64.b64encode(shared.key).decode()]  # fmt: skip

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        good = _knock(ALICE, 22)
        junk = Packet(b"~1" + b"A" * 200, SRC, None, 17, 1, 62201)
        daemon.dispatch.handle_all([good, good, _knock(ALICE, 23, tamper=True), junk], NOW)
        daemon.reload()  # a good reload, then one the key file's mode refuses
        key_file.chmod(0o604)
        daemon.reload()
        key_file.write_text("x25519-priv:not a key\n")
        key_file.chmod(0o600)
        daemon.reload()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    assert daemon.refusals.counts == {
        "granted": 1, "replay": 1, "aead": 1, "unknown_key_id": 1}  # fmt: skip
    assert caplog.text.count("reload refused") == 2 and "configuration reloaded" in caplog.text
    out, err = capsys.readouterr()
    for secret in secrets:
        assert secret not in caplog.text + out + err
        assert all(secret not in repr(r.args) for r in caplog.records)
