"""fwknop connect / ssh / ssh-config without a network: the relay, the argv, the Host block."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from fwknop_tui.cli import _split_ssh_args, _ssh_argv, main
from fwknop_tui.connect import relay
from fwknop_tui.errors import ClientUsageError, ExitCode
from fwknop_tui.wallet.profiles import Profile
from fwknop_tui.wallet.secrets import MemoryStore
from tests.helpers.ourclient import OurClient

KEYS = generate_keys()


def _pump(fd: int, data: bytes) -> threading.Thread:
    def write() -> None:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _drain(fd: int, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with os.fdopen(fd, "rb") as fh:
            into.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_relay_carries_megabytes_both_ways_at_once_and_passes_both_ends_on() -> None:
    up = os.urandom(3 << 20)
    down = os.urandom(5 << 20)
    ours, theirs = socket.socketpair()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    got_down: list[bytes] = []
    got_up: list[bytes] = []

    def far_end() -> None:  # sends everything while reading, then reads to the end
        sender = threading.Thread(target=theirs.sendall, args=(down,), daemon=True)
        sender.start()
        chunks = []
        while chunk := theirs.recv(1 << 16):
            chunks.append(chunk)
        got_up.append(b"".join(chunks))
        sender.join(30)
        theirs.close()

    threads = [
        threading.Thread(target=far_end, daemon=True),
        _pump(in_w, up),
        _drain(out_r, got_down),
    ]
    threads[0].start()
    relay(ours, in_r, out_w)
    for thread in threads:
        thread.join(30)
    ours.close()
    os.close(in_r)
    assert got_up == [up], "what came in on stdin went out, and its end became a half-close"
    assert got_down == [down], "what came from the server reached stdout, then end-of-file"


def test_the_server_can_answer_after_our_half_close() -> None:
    ours, theirs = socket.socketpair()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    got: list[bytes] = []

    def server() -> None:
        request = b""
        while chunk := theirs.recv(100):
            request += chunk
        theirs.sendall(request.upper())  # answers only once our side has ended
        theirs.close()

    thread = threading.Thread(target=server, daemon=True)
    thread.start()
    drain = _drain(out_r, got)
    _pump(in_w, b"hello after eof")
    relay(ours, in_r, out_w)
    drain.join(10)
    thread.join(10)
    assert got == [b"HELLO AFTER EOF"]


def test_keep_open_knocks_again_while_the_connection_lives() -> None:
    ours, theirs = socket.socketpair()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    knocked = threading.Event()
    count = [0]

    def reknock() -> None:
        count[0] += 1
        if count[0] == 2:
            knocked.set()

    def server() -> None:
        knocked.wait(30)
        theirs.close()

    threading.Thread(target=server, daemon=True).start()
    _drain(out_r, [])
    os.close(in_w)
    relay(ours, in_r, out_w, every=0.01, reknock=reknock)
    assert count[0] >= 2


@pytest.mark.parametrize(
    ("words", "options", "command"),
    [
        ([], [], []),
        (["uptime"], [], ["uptime"]),
        (["-l", "admin", "-A", "ls", "-l"], ["-l", "admin", "-A"], ["ls", "-l"]),
        (["-ladmin", "-vv", "--", "-weird-cmd"], ["-ladmin", "-vv"], ["-weird-cmd"]),
        (["-o", "ServerAliveInterval=5", "-p2222"], ["-o", "ServerAliveInterval=5", "-p2222"], []),
    ],
)
def test_ssh_args_split_into_options_and_command(
    words: list[str], options: list[str], command: list[str]
) -> None:
    assert _split_ssh_args(words) == (options, command)


@pytest.mark.parametrize("words", [["-Z"], ["-l"], ["-vZ"]])
def test_ssh_args_that_ssh_would_refuse_are_refused(words: list[str]) -> None:
    with pytest.raises(ClientUsageError):
        _split_ssh_args(words)


def test_fwknop_ssh_runs_ssh_with_fwknop_connect_as_proxy_command() -> None:
    profile = Profile.from_table("home", {"host": "fw.example.org", "access": ["tcp/2222"]})
    argv = _ssh_argv(profile, ["-l", "admin", "uptime"])
    assert argv[0] == "ssh" and argv[1] == "-o"
    assert argv[2].startswith("ProxyCommand=") and argv[2].endswith(" connect home %h %p")
    assert argv[3:] == ["-p", "2222", "-l", "admin", "--", "fw.example.org", "uptime"]
    # the user's own -p wins
    assert "2222" not in _ssh_argv(profile, ["-p", "22"])[3:5]


def test_ssh_config_prints_a_host_block(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", "home", "-D", "198.18.0.1", "-A", "tcp/2222"], secrets=memory) == 0
    capsys.readouterr()
    assert main(["ssh-config", "home"], secrets=memory) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == ["Host home", "    HostName 198.18.0.1", "    Port 2222"]
    assert lines[4].startswith("    ProxyCommand ") and lines[4].endswith(" connect home %h %p")
    assert main(["ssh-config", "home", "--alias", "a b"], secrets=memory) == ExitCode.USAGE


def _client(tmp_path: Path, port: int) -> OurClient:
    client = OurClient(tmp_path)
    client.add_profile(
        "lab",
        KEYS.as_text(),
        host="127.0.0.1",
        port=9,
        access=[f"tcp/{port}"],
        verify_retries=2,
        verify_interval=0.1,
    )
    return client


def test_connect_relays_a_whole_exchange_and_exits_0(tmp_path: Path) -> None:
    """As ssh runs it: stdin to the server, the server's answer to stdout, clean ends."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                request = b""
                while chunk := conn.recv(100):
                    request += chunk
                conn.sendall(b"got " + request)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = _client(tmp_path, port)
        res = client.run(["connect", "lab", "127.0.0.1", str(port)], stdin=b"ping\n")
        thread.join(10)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == b"got ping\n"
    assert res.stderr == b""  # ssh shows our stderr: nothing when all is well


def test_connect_fails_with_the_verify_exit_code_when_nothing_answers(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = _client(tmp_path, port)
        res = client.run(["connect", "lab"], stdin=b"")
    assert res.returncode == ExitCode.VERIFY_TIMEOUT
    assert res.stdout == b""
    assert f"127.0.0.1:{port} did not answer".encode() in res.stderr


def test_connect_needs_host_and_port_together(tmp_path: Path) -> None:
    res = _client(tmp_path, 22).run(["connect", "lab", "127.0.0.1"], stdin=b"")
    assert res.returncode == ExitCode.USAGE and b"HOST and PORT" in res.stderr


def test_connect_with_a_knock_sequence_profile_relays_too(tmp_path: Path) -> None:
    """A fwknop 1.x shared sequence knocks, then the same verify hands over the connection."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.sendall(b"banner\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = OurClient(tmp_path)
        client.add_profile(
            "seq",
            "",
            host="127.0.0.1",
            mode="knock",
            knock_sequence=["udp/9", "udp/9"],
            knock_delay=0,
            access=[f"tcp/{port}"],
            verify_retries=2,
            verify_interval=0.1,
        )
        res = client.run(["connect", "seq", "127.0.0.1", str(port)], stdin=b"")
        thread.join(10)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == b"banner\n"
