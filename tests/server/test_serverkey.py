"""The x25519 server key file and ``fwknopd --key-gen-server`` (docs/x25519-spa.md §8)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from fwknop_server import serverkey
from fwknop_server.cli import ExitCode, main
from fwknop_server.errors import ConfigError
from fwknop_server.serverkey import read_server_key, server_key_text, write_server_key

from fwknop_core import X25519PrivateKey, X25519PublicKey

KEY = X25519PrivateKey(bytes(range(32)))
SECRET = KEY.to_text().removeprefix("x25519-priv:")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_written_key_reads_back_and_names_its_public_key(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    write_server_key(path, KEY)
    assert _mode(path) == 0o600
    assert read_server_key(path) == KEY
    lines = path.read_text().splitlines()
    assert lines[1] == KEY.to_text()
    assert lines[2].endswith(KEY.public_key.to_text()) and lines[2].startswith("#")
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]  # no temporary file left


def test_the_key_file_is_0600_from_its_first_byte_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(serverkey.os, "write", write)
    old = os.umask(0)
    try:
        write_server_key(tmp_path / "server.key", KEY)
    finally:
        os.umask(old)
    assert modes and set(modes) == {0o600}
    assert _mode(tmp_path / "server.key") == 0o600


def test_an_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    write_server_key(path, KEY)
    with pytest.raises(ConfigError, match="exists"):
        write_server_key(path, X25519PrivateKey.generate())
    assert read_server_key(path) == KEY
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory does not exist"):
        write_server_key(tmp_path / "nope" / "server.key", KEY)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o610, 0o601])
def test_a_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "server.key"
    write_server_key(path, KEY)
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"open to other users \\(mode 0{mode:o}\\)") as refused:
        read_server_key(path)
    assert SECRET not in str(refused.value) and str(path) in str(refused.value)


def test_a_symlink_a_directory_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    write_server_key(real, KEY)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        read_server_key(link)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_server_key(tmp_path)
    with pytest.raises(ConfigError, match="does not exist: make one with fwknopd --key-gen-server"):
        read_server_key(tmp_path / "missing.key")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_a_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    write_server_key(path, KEY)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to another user"):
        read_server_key(path)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# nothing\n", None, "holds no x25519-priv: line"),
        (f"{KEY.to_text()}\n{KEY.to_text()}\n", 2, "a second private key"),
        (f"# c\n{KEY.public_key.to_text()}\n", 2, "expected x25519-priv:"),
        ("x25519-priv:AAAA\n", 1, "must be 32 bytes"),
        (f"x25519-priv:{SECRET[:-2]}!=\n", 1, "not valid base64"),
    ],
)
def test_a_bad_key_file_names_the_line_and_never_the_key(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    path = tmp_path / "server.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    with pytest.raises(ConfigError) as refused:
        read_server_key(path)
    (problem,) = refused.value.problems
    assert problem.path == path and problem.line == line
    assert message in problem.message
    assert SECRET not in str(refused.value)


def test_key_gen_server_writes_the_file_and_prints_the_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "server.key"
    assert main(["--key-gen-server", str(path)]) == ExitCode.OK
    out, err = capsys.readouterr()
    public = X25519PublicKey.from_text(out.strip())
    assert read_server_key(path).public_key == public
    assert f"SERVER_PRIVATE_KEY_FILE {path}" in err and "mode 0600" in err
    assert "x25519-priv" not in out + err


def test_key_gen_server_refuses_an_existing_file_and_names_its_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "server.key"
    path.write_text(server_key_text(KEY))
    path.chmod(0o600)
    assert main(["--key-gen-server", str(path)]) == ExitCode.ERROR
    out, err = capsys.readouterr()
    assert out == ""
    assert f"its public key is {KEY.public_key.to_text()}" in err
    assert SECRET not in err
    assert read_server_key(path) == KEY


def test_key_gen_server_without_a_file_uses_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "etc" / "server_x25519.key"
    default.parent.mkdir()
    monkeypatch.setattr(serverkey, "DEFAULT_SERVER_KEY_FILE", default)
    out, err = io.StringIO(), io.StringIO()
    assert serverkey.key_gen_server("", out, err, rng=lambda n: bytes(range(n))) == 0
    assert out.getvalue() == KEY.public_key.to_text() + "\n"
    assert read_server_key(default) == KEY
    assert serverkey.DEFAULT_SERVER_KEY_FILE.name == "server_x25519.key"
