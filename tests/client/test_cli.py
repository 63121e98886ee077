"""The fwknop command in-process with an in-memory keyring: exit codes, one-line errors, data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fwknop_core import HmacKey, RijndaelKey, extract_http_spa, open_packet
from fwknop_tui.errors import ExitCode
from fwknop_tui.wallet.secrets import MemoryStore
from tests.client.conftest import run_cli as _run


def _keys(memory: MemoryStore, name: str) -> tuple[RijndaelKey, HmacKey]:
    got = memory.get_many(name, ["rijndael", "hmac"])
    assert got["rijndael"] and got["hmac"]
    return RijndaelKey.from_base64(got["rijndael"]), HmacKey.from_base64(got["hmac"])


@pytest.fixture
def lab(memory: MemoryStore, capsys: pytest.CaptureFixture[str]) -> str:
    assert (
        _run(
            ["add", "lab", "-D", "127.0.0.1", "-A", "tcp/22,udp/53", "-a", "198.18.0.2"],
            memory,
            capsys,
        )[0]
        == 0
    )
    assert _run(["keygen", "--profile", "lab"], memory, capsys)[0] == 0
    return "lab"


def test_dry_run_prints_a_packet_that_opens(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["send", lab, "--dry-run", "-f", "60"], memory, capsys)
    assert code == ExitCode.OK
    key, hkey = _keys(memory, lab)
    opened = open_packet(out.strip(), key, hmac_key=hkey, now=time.time())
    assert opened.message.message == "198.18.0.2,tcp/22,udp/53"
    assert opened.message.client_timeout == 60
    assert "built (not sent)" in err


def test_udp_send_reaches_a_local_socket(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        code, out, _err = _run(["send", lab, "-p", str(port), "--json"], memory, capsys)
        data = sock.recv(2048).decode()
    assert code == 0
    result = json.loads(out)
    assert result["sent"] is True and result["port"] == port and "packet" not in result
    assert [s["stage"] for s in result["stages"]] == ["keys", "resolve", "build", "send"]
    key, hkey = _keys(memory, lab)
    assert open_packet(data, key, hmac_key=hkey, now=time.time()).message.access[0].port == 22


def test_http_and_verify_against_a_local_listener(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def accept() -> None:
        for _ in range(2):  # the HTTP request, and the probe made before it
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(4096))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code, _out, err = _run(
        ["send", lab, "-P", "http", "-p", str(port), "--verify", "--probe", f"127.0.0.1:{port}"],
        memory,
        capsys,
    )
    thread.join(10)
    server.close()
    assert code == 0, err
    request = next(r for r in received if r)
    spa = extract_http_spa(request)
    assert spa is not None
    key, hkey = _keys(memory, lab)
    assert (
        open_packet(spa.data, key, hmac_key=hkey, now=time.time()).message.allow_ip == "198.18.0.2"
    )
    assert b"User-Agent: Fwknop/2.6.10" in request
    # the port took the HTTP request, so it was open before the knock: no proof of anything
    assert f"127.0.0.1:{port} already answered before the knock" in err
    assert "verified" not in err


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["send", "nope"], ExitCode.NO_SUCH_PROFILE, "no profile named 'nope'"),
        (["send", "lab", "-D", "no-such-host.invalid"], ExitCode.RESOLVE, "cannot resolve host"),
        (["send", "lab", "-P", "tcp", "-p", "9"], ExitCode.SEND, "tcp to 127.0.0.1 port 9 failed"),
        (
            [
                "send",
                "lab",
                "--verify",
                "--probe",
                "127.0.0.1:9",
                "--verify-retries",
                "2",
                "--verify-interval",
                "0.05",
            ],
            ExitCode.VERIFY_TIMEOUT,
            "did not answer after",
        ),
        (["send", "lab", "-a", "2001:db8::2"], ExitCode.USAGE, "IPv6"),
        (
            ["send", "lab", "-M", "legacy"],
            ExitCode.USAGE,
            "legacy mode cannot be combined with an HMAC",
        ),
        (["send", "-D", "127.0.0.1"], ExitCode.USAGE, "an ad-hoc send needs keys"),
        (["send", "lab", "--set", "nope=1"], ExitCode.USAGE, "unknown field"),
        (["edit", "lab"], ExitCode.USAGE, "nothing to change"),
        (["add", "lab", "-D", "x"], ExitCode.USAGE, "already exists"),
        (["rename", "lab", "bad name"], ExitCode.USAGE, "profile name"),
        (
            ["show", "lab", "--reveal", "gpg-signing-pw"],
            ExitCode.USAGE,
            "has no gpg-signing-pw key",
        ),
    ],
)
def test_errors_are_one_line_with_their_own_exit_code(  # noqa: PLR0917 - fixtures + params
    lab: str,
    memory: MemoryStore,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    needle: str,
) -> None:
    got, _out, err = _run(args, memory, capsys)
    assert got == code, err
    lines = err.splitlines()
    assert needle in lines[-1]  # the error is the last line, whole
    assert all(line.startswith("fwknop: ") for line in lines)
    assert len(lines) == (
        2 if code == ExitCode.VERIFY_TIMEOUT else 1
    )  # + "sent ..." when verifying


def test_missing_key_is_its_own_error(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(["add", "bare", "-D", "127.0.0.1"], memory, capsys)
    code, _out, err = _run(["send", "bare"], memory, capsys)
    assert code == ExitCode.KEY_MISSING
    assert "no Rijndael key" in err and "fwknop keygen --profile bare" in err


def test_bad_profiles_file_is_exit_4_with_file_and_line(
    private_config: Path, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    private_config.mkdir(parents=True)
    (private_config / "profiles.toml").write_text('[profiles.x]\nhost = "h"\nport = "many"\n')
    code, _out, err = _run(["send", "x"], memory, capsys)
    assert code == ExitCode.CONFIG
    assert f"{private_config / 'profiles.toml'}:3: profiles.x.port:" in err
    code, _out, err = _run(["check"], memory, capsys)
    assert code == ExitCode.CONFIG and "profiles.x.port" in err


def test_adhoc_send_with_keys_on_stdin(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, hkey = RijndaelKey(b"a" * 32), HmacKey(b"b" * 64)
    import io

    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(f"KEY_BASE64: {key.to_base64()}\nHMAC_KEY_BASE64: {hkey.to_base64()}\n"),
    )
    code, out, err = _run(
        ["send", "-D", "127.0.0.1", "-A", "tcp/2222", "-s", "--keys-stdin", "-T"], memory, capsys
    )
    assert code == 0, err
    assert (
        open_packet(out.strip(), key, hmac_key=hkey, now=time.time()).message.message
        == "0.0.0.0,tcp/2222"
    )


def test_adhoc_send_with_keys_from_an_fd(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    key = RijndaelKey(b"c" * 32)
    read, write = os.pipe()
    os.write(write, key.to_base64().encode() + b"\n")
    os.close(write)
    try:
        code, out, err = _run(
            [
                "send",
                "-D",
                "127.0.0.1",
                "--hmac-digest-type",
                "none",
                "--keys-fd",
                str(read),
                "-T",
                "-m",
                "sha512",
            ],
            memory,
            capsys,
        )
    finally:
        os.close(read)
    assert code == 0, err
    assert open_packet(out.strip(), key, now=time.time()).message.message == "0.0.0.0,tcp/22"


def test_edit_unset_list_rename_rm(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _run(
            ["edit", lab, "-p", "4000", "--set", "verify_retries=9", "--unset", "allow_ip"],
            memory,
            capsys,
        )[0]
        == 0
    )
    shown = json.loads(_run(["show", lab, "--json"], memory, capsys)[1])
    assert shown["profile"]["port"] == 4000 and shown["profile"]["verify_retries"] == 9
    assert shown["profile"]["allow_ip"] == "source"
    assert shown["keys"] == {"rijndael": "keyring", "hmac": "keyring"}
    assert _run(["rename", lab, "lab2"], memory, capsys)[0] == 0
    assert set(memory.get_many("lab2", ["rijndael", "hmac"]).values()) != {None}
    assert memory.get_many(lab, ["rijndael", "hmac"]) == {"rijndael": None, "hmac": None}
    assert _run(["list"], memory, capsys)[1] == "lab2\n"
    assert _run(["rm", "lab2", "--yes"], memory, capsys)[0] == 0
    assert memory.entries == {}
    assert _run(["list"], memory, capsys)[1] == ""


def test_server_stanza_matches_the_keys(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["server-stanza", lab], memory, capsys)
    key, hkey = _keys(memory, lab)
    assert code == 0
    assert f"KEY_BASE64                  {key.to_base64()}" in out
    assert f"HMAC_KEY_BASE64             {hkey.to_base64()}" in out
    assert "HMAC_DIGEST_TYPE            sha256" in out
    assert "holds the profile's keys" in err


def test_bash_completion_offers_commands_options_and_profiles(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, script, _err = _run(["completion", "bash"], memory, capsys)
    assert code == 0
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "fwknop").write_text(
        "#!/bin/sh\n[ \"$1\" = list ] && printf 'lab\\nlaptop\\nwork\\n'\n"
    )
    (fake / "fwknop").chmod(0o755)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        prog = (
            f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\n"
            "_fwknop_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
        )
        res = subprocess.run(
            ["bash", "-c", prog],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": f"{fake}:/usr/bin:/bin"},
            check=True,
        )
        return res.stdout.split()

    assert "send" in complete("fwknop se") and "server-stanza" in complete("fwknop se")
    assert complete("fwknop send la") == ["lab", "laptop"]
    assert "--dry-run" in complete("fwknop send --dry")
    assert complete("fwknop rm w") == ["work"]
