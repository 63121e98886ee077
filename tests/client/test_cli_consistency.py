"""The fwknop command behaves the same way everywhere (issue 13, "CLI consistency")."""

from __future__ import annotations

import argparse
import json

import pytest

from fwknop_tui import __version__
from fwknop_tui.cli import _build_parser, main
from fwknop_tui.errors import ExitCode
from fwknop_tui.wallet.secrets import MemoryStore
from tests.client.conftest import Terminal
from tests.client.conftest import run_cli as _run


@pytest.fixture
def lab(memory: MemoryStore, capsys: pytest.CaptureFixture[str]) -> str:
    assert _run(["add", "lab", "-D", "127.0.0.1", "--keygen"], memory, capsys)[0] == 0
    return "lab"


def test_keygen_that_refuses_exits_non_zero(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    before = memory.get_many(lab, ["rijndael", "hmac"])
    code, out, err = _run(["keygen", "--profile", lab], memory, capsys)
    assert code == ExitCode.USAGE
    assert out == "" and "already has keys" in err and "--force" in err
    assert memory.get_many(lab, ["rijndael", "hmac"]) == before


def test_rm_asks_on_a_terminal_and_no_keeps_everything(
    lab: str,
    memory: MemoryStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, _out, err = _run(["rm", lab], memory, capsys)
    assert code == ExitCode.FAILURE
    assert f"delete profile {lab!r} and its keys in the keyring? [y/N]" in err
    assert "nothing was deleted" in err
    assert _run(["list"], memory, capsys)[1] == "lab\n"
    assert None not in memory.get_many(lab, ["rijndael", "hmac"]).values()
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert _run(["rm", lab], memory, capsys)[0] == ExitCode.OK
    assert _run(["list"], memory, capsys)[1] == ""
    assert set(memory.get_many(lab, ["rijndael", "hmac"]).values()) == {None}


def test_rm_in_a_script_needs_yes(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(["rm", lab], memory, capsys)  # stdin is not a terminal here
    assert code == ExitCode.USAGE and "--yes" in err
    assert _run(["list"], memory, capsys)[1] == "lab\n"
    assert _run(["rm", lab, "--yes"], memory, capsys)[0] == ExitCode.OK
    assert _run(["list"], memory, capsys)[1] == ""


def test_rm_of_an_unknown_profile_does_not_ask(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, _out, err = _run(["rm", "ghost"], memory, capsys)
    assert code == ExitCode.NO_SUCH_PROFILE and "[y/N]" not in err


@pytest.mark.parametrize(
    "case",
    [
        (["send", "ghost", "--json"], ExitCode.NO_SUCH_PROFILE, "no_such_profile"),
        (["show", "ghost", "--json"], ExitCode.NO_SUCH_PROFILE, "no_such_profile"),
        (["send", "--json"], ExitCode.USAGE, "usage"),
        (["send", "--json", "--no-such-option"], ExitCode.USAGE, "usage"),
        (["send", "lab", "--json", "-p", "99999"], ExitCode.USAGE, "usage"),
        (["list", "--json", "extra"], ExitCode.USAGE, "usage"),
    ],
)
def test_json_failures_print_an_error_object(
    lab: str,
    memory: MemoryStore,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], ExitCode, str],
) -> None:
    args, code, reason = case
    got, out, err = _run(args, memory, capsys)
    assert got == code
    error = json.loads(out)["error"]
    assert error["code"] == int(code) and error["reason"] == reason
    assert error["message"] and error["message"] in err.replace("\nfwknop: ", "; ")


def test_json_of_a_verify_that_never_answers_is_one_document(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["send", lab, "--json", "--probe", "127.0.0.1:9", "--verify-retries", "1"]
    code, out, _err = _run([*args, "--verify-interval", "0.05"], memory, capsys)
    assert code == ExitCode.VERIFY_TIMEOUT
    data = json.loads(out)
    assert data["sent"] is True and data["verify"]["ok"] is False
    assert data["error"]["reason"] == "verify_timeout"


def test_send_with_nothing_says_what_to_do(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(["send"], memory, capsys)
    assert code == ExitCode.USAGE
    assert "fwknop add NAME -D HOST --keygen" in err and "fwknop send -D HOST" in err
    _run(["add", "home", "-D", "127.0.0.1"], memory, capsys)
    code, _out, err = _run(["send"], memory, capsys)
    assert code == ExitCode.USAGE
    assert "fwknop send PROFILE (yours: home)" in err


def test_version_names_the_program_and_what_it_speaks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fwknop-tui {__version__} ")
    assert "fwknop 2.6.10" in out


def test_add_reports_every_problem_like_check(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(
        ["add", "bad", "-D", "198.18.", "--server-port=-1", "-A", "tcp/x", "-M", "rot13"],
        memory,
        capsys,
    )
    assert code == ExitCode.USAGE
    lines = [line for line in err.splitlines() if line.startswith("fwknop: ")]
    assert len(lines) == 4, err
    assert "host: '198.18.' is not a complete IPv4 address" in err
    assert "port (-p/--server-port): must be a number from 1 to 65535, not -1" in err
    assert "access (-A/--access)" in err and "encryption_mode (-M/--encryption-mode)" in err
    assert _run(["list"], memory, capsys)[1] == ""


def test_edit_reports_every_problem_and_changes_nothing(
    lab: str, memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(
        ["edit", lab, "--server-port=0", "--fw-timeout=99999999"], memory, capsys
    )
    assert code == ExitCode.USAGE
    assert "port (-p/--server-port)" in err and "client_timeout (-f/--fw-timeout)" in err
    shown = json.loads(_run(["show", lab, "--json"], memory, capsys)[1])
    assert shown["profile"]["port"] == 62201


def _every_action() -> list[tuple[str, argparse.Action]]:
    parser = _build_parser()
    found = [("fwknop", a) for a in parser._actions]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"fwknop {name}", a) for a in sub._actions]
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{where}: {'/'.join(a.option_strings) or a.dest}"
        for where, a in _every_action()
        if not isinstance(a, argparse._SubParsersAction)
        and a.help != argparse.SUPPRESS
        and not (a.help or "").strip()
    ]
    assert missing == []
