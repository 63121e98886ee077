"""Command messages and command cycles: parsed, decided and run as the real fwknopd 2.6.10 does.

The expected strings (argv splitting, the sudo prefix, the cycle
substitutions) are what the real fwknopd did with the same settings in a
namespace, recorded from its log and from a script that printed its argv.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.access import load_access
from fwknop_server.cmdexec import DEFAULT_PATH, CommandExecutor, Outcome, run_argv
from fwknop_server.commands import CommandPolicy, cycle_values, split_words, substitute
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.errors import ConfigError
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.processor import Processor, Settings
from fwknop_server.vocab import MAX_WORDS, Packet, Reason, Refused, RunAs, RunCommand, RunCycle

from fwknop_core import HmacKey, RijndaelKey, SpaMessage, build_packet
from tests.helpers.vectors import stanza_keys, vectors
from tests.helpers.wait import wait_for, wait_for_async

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
NOW = 1_795_268_000
STANZA = f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
ROOT = os.geteuid() == 0
OPEN = (
    "/tmp/exp/rec.sh open $IP $SRC $PKT_SRC $DST $PORT $PROTO $TIMEOUT $CLIENT_TIMEOUT "
    "$FOO $ x$ $IPX $$PORT"
)


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "access.conf"
    path.write_text(text)
    return load_access([path])


def _packet(message: SpaMessage) -> Packet:
    return Packet(build_packet(message, KEY, hmac_key=HKEY).encode(), SRC, DST, 17, 40000, 62201)


def _command(text: str, *, now: int = NOW) -> Packet:
    return _packet(SpaMessage.command_request("198.18.0.2", text, username="u", now=now))


def _access(spec: str, *, timeout: int = 0, allow: str = "198.18.0.2") -> Packet:
    return _packet(
        SpaMessage.access_request(allow, spec, username="u", client_timeout=timeout, now=NOW)
    )


# -- pure parts --------------------------------------------------------------------


def test_commands_are_split_on_whitespace_only_as_fwknopd_splits_them() -> None:
    # the real fwknopd ran `rec.sh 'a b' "c d" $HOME ;x |y` as exactly these words
    assert split_words("""/tmp/exp/rec.sh 'a b' "c d" $HOME ;x |y""") == (
        "/tmp/exp/rec.sh", "'a", "b'", '"c', 'd"', "$HOME", ";x", "|y",
    )  # fmt: skip
    assert split_words("  a \t b  c ") == ("a", "b", "c")


def test_cycle_substitutions_are_fwknopds() -> None:
    values = cycle_values(
        source=SRC, packet_src=SRC, packet_dst=DST, proto=6, port=22,
        timestamp=1796157841, wait=3,
    )  # fmt: skip
    # what the real fwknopd ran for this template (timestamp 1796157841, CMD_CYCLE_TIMER 3)
    assert substitute(OPEN, values) == (
        "/tmp/exp/rec.sh open 198.18.0.2 198.18.0.2 198.18.0.2 198.18.0.1 22 6 1796157844 3 "
        "FOO  x 198.18.0.2X 22"
    )
    # the close delay, in $TIMEOUT and $CLIENT_TIMEOUT
    with_timeout = cycle_values(
        source=SRC, packet_src=ipaddress.ip_address("203.0.113.7"), packet_dst=None,
        proto=17, port=53, timestamp=1000, wait=5,
    )  # fmt: skip
    assert substitute("$TIMEOUT $CLIENT_TIMEOUT $PKT_SRC $DST $PROTO", with_timeout) == (
        "1005 5 203.0.113.7 0.0.0.0 17"
    )


def test_the_sudo_prefix_leaves_root_out() -> None:
    sudo = CommandPolicy(sudo=True, sudo_user="nobody", sudo_group="daemon")
    assert sudo.argv("id -u", "/usr/bin/sudo") == (
        "/usr/bin/sudo", "-u", "nobody", "-g", "daemon", "--", "id", "-u",
    )  # fmt: skip
    assert CommandPolicy(sudo=True).argv("id  -u", "/s -n") == ("/s", "-n", "--", "id", "-u")
    assert CommandPolicy(sudo=True, sudo_user="root", sudo_group="Root").argv("id", "/s") == (
        "/s",
        "--",
        "id",
    )
    assert CommandPolicy().argv("echo fwknop-spec-test", "/s") == ("echo", "fwknop-spec-test")
    assert CommandPolicy(sudo=True).argv("  ", "/s") == ()


def test_the_clients_words_are_never_sudo_options() -> None:
    # fwknopd 2.6.10 runs "sudo -u nobody -u root /bin/sh": sudo's last -u wins, and the
    # client's command runs as root; after "--" sudo takes "-u" for the program to run
    sudo = CommandPolicy(sudo=True, sudo_user="nobody")
    assert sudo.argv("-u root /bin/sh", "/usr/bin/sudo") == (
        "/usr/bin/sudo", "-u", "nobody", "--", "-u", "root", "/bin/sh",
    )  # fmt: skip


# -- access.conf -------------------------------------------------------------------


def test_command_settings_are_read_and_names_resolved(tmp_path: Path) -> None:
    (stanza,) = _load(
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC Y\nCMD_EXEC_USER nobody\nENABLE_CMD_SUDO_EXEC Y\n"
        "CMD_SUDO_EXEC_USER daemon\nCMD_SUDO_EXEC_GROUP nogroup\n",
    )
    assert stanza.command_exec == CommandPolicy(
        sudo=True, sudo_user="daemon", sudo_group="nogroup",
        run_as=RunAs(65534, 65534, "nobody", None),
    )  # fmt: skip
    assert stanza.command_exec.run_as.describe() == "nobody/nobody (UID=65534,GID=65534)"
    # a group by its name (fwknopd only takes a user's name here, for its primary group)
    (grouped,) = _load(tmp_path, STANZA + "ENABLE_CMD_EXEC Y\nCMD_EXEC_GROUP nogroup\n")
    assert grouped.command_exec.run_as == RunAs(None, 65534, None, "nogroup")
    (by_user,) = _load(
        tmp_path, STANZA + "ENABLE_CMD_EXEC Y\nCMD_EXEC_USER nobody\nCMD_EXEC_GROUP daemon\n"
    )
    assert by_user.command_exec.run_as == RunAs(65534, 1, "nobody", "daemon")
    (as_root,) = _load(tmp_path, STANZA + "ENABLE_CMD_EXEC Y\nCMD_EXEC_USER root\n")
    assert as_root.command_exec == CommandPolicy()
    (off,) = _load(tmp_path, STANZA + "ENABLE_CMD_EXEC N\nCMD_EXEC_USER nobody\n")
    assert off.command_exec is None


def test_bad_command_settings_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "access.conf"
    path.write_text(
        STANZA + "ENABLE_CMD_EXEC Y\nCMD_EXEC_USER no-such-user-here\n"  # 4, 5
        "CMD_SUDO_EXEC_GROUP no-such-group-here\n"  # 6
        + STANZA
        + "CMD_CYCLE_OPEN /bin/true\n"  # 10
        + STANZA
        + "CMD_CYCLE_CLOSE /bin/true\n"  # 14
        + STANZA
        + "CMD_CYCLE_OPEN /bin/true $IP\nCMD_CYCLE_CLOSE /bin/false\n"  # 18, 19
        + STANZA
        + "CMD_CYCLE_OPEN /bin/true\nCMD_CYCLE_CLOSE /bin/true\nCMD_CYCLE_TIMER 0\n"
        + STANZA
        + f"CMD_CYCLE_OPEN /bin/echo {'x ' * MAX_WORDS}\nCMD_CYCLE_CLOSE NONE\n"  # 29
        + STANZA
        + f"CMD_CYCLE_OPEN /bin/echo {'x' * 250}\nCMD_CYCLE_CLOSE NONE\n"  # 34
    )
    with pytest.raises(ConfigError) as info:
        load_access([path])
    assert str(info.value).splitlines() == [
        f"{path}:5: CMD_EXEC_USER 'no-such-user-here' is not a user on this system",
        f"{path}:6: CMD_SUDO_EXEC_GROUP 'no-such-group-here' is not a group on this system",
        f"{path}:10: CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE (a command, or NONE for none)",
        f"{path}:14: CMD_CYCLE_CLOSE needs CMD_CYCLE_OPEN",
        f"{path}:19: CMD_CYCLE_CLOSE needs CMD_CYCLE_TIMER (seconds)",
        f"{path}:25: CMD_CYCLE_TIMER must be 1..8388608 seconds",
        f"{path}:29: CMD_CYCLE_OPEN has more than 28 words; fwknopd runs none that long",
        f"{path}:34: CMD_CYCLE_OPEN is longer than 255 characters",
    ]


def test_a_cycle_without_a_close_command_needs_no_timer(tmp_path: Path) -> None:
    (stanza,) = _load(tmp_path, STANZA + "CMD_CYCLE_OPEN /bin/true $IP\nCMD_CYCLE_CLOSE NONE\n")
    assert stanza.cycle is not None
    assert (stanza.cycle.open, stanza.cycle.close, stanza.cycle.timer) == ("/bin/true $IP", None, 0)


def test_cmd_exec_timeout_is_range_checked(tmp_path: Path) -> None:
    conf = tmp_path / "fwknopd.conf"
    (tmp_path / "access.conf").write_text(STANZA)
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}\nFIREWALL_TYPE log\nCMD_EXEC_TIMEOUT 0\n")
    options = Options(config_file=conf, access_paths=(tmp_path / "access.conf",))
    with pytest.raises(ConfigError, match=r"fwknopd.conf:3: CMD_EXEC_TIMEOUT must be a number"):
        load(options)
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}\nFIREWALL_TYPE log\nCMD_EXEC_TIMEOUT 7\n")
    assert load(options).command_timeout == 7.0
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}\nFIREWALL_TYPE log\n")
    assert load(options).command_timeout == 30.0


# -- the processor's decisions -------------------------------------------------------


def test_the_real_clients_command_vector_is_run_as_fwknopd_ran_it(tmp_path: Path) -> None:
    case = next(c for c in vectors() if c["id"] == "server-cmd")
    key, hkey = stanza_keys(case["server"]["access_conf"])
    stanzas = _load(tmp_path, case["server"]["access_conf"])
    timestamp = case["server"]["decoded_fields"]["timestamp"]
    decision = Processor(stanzas, Settings()).process(
        Packet(case["spa_packet"].encode(), SRC, DST), now=timestamp
    )
    assert decision == RunCommand(
        "echo fwknop-spec-test", ("echo", "fwknop-spec-test"), None, SRC, SRC, 1, "root"
    )
    assert key is not None and hkey is not None
    # fwknopd: "Processing SPA Command message: command='echo fwknop-spec-test'."
    assert case["server"]["actions"][0].endswith("command='echo fwknop-spec-test'.")


def test_commands_need_enable_cmd_exec_and_a_stanza_that_allows_them(tmp_path: Path) -> None:
    stanzas = _load(tmp_path, STANZA + STANZA + "ENABLE_CMD_EXEC Y\n")
    decision = Processor(stanzas, Settings()).process(_command("/bin/true"), now=NOW)
    assert isinstance(decision, RunCommand) and decision.stanza == 2  # the first one refused it
    refused = Processor(stanzas[:1], Settings()).process(_command("/bin/true"), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.COMMAND


def test_sudo_and_the_user_end_up_in_the_decision(tmp_path: Path) -> None:
    stanzas = _load(
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC Y\nENABLE_CMD_SUDO_EXEC Y\nCMD_SUDO_EXEC_USER daemon\n"
        "CMD_EXEC_USER nobody\n",
    )
    decision = Processor(stanzas, Settings(sudo_exe="/opt/sudo")).process(
        _command("id -u"), now=NOW
    )
    assert isinstance(decision, RunCommand)
    # the real fwknopd: "Running command '/tmp/exp/rec.sh -u daemon id -u' setuid/setgid
    # user/group to nobody/nobody (UID=65534,GID=65534)" with SUDO_EXE /tmp/exp/rec.sh
    assert decision.argv == ("/opt/sudo", "-u", "daemon", "--", "id", "-u")
    assert decision.run_as == RunAs(65534, 65534, "nobody", None)


def test_in_test_mode_a_command_is_logged_not_run_and_the_next_stanza_is_tried(
    tmp_path: Path,
) -> None:
    stanzas = _load(tmp_path, STANZA + "ENABLE_CMD_EXEC Y\n" + STANZA + "ENABLE_CMD_EXEC Y\n")
    decision = Processor(stanzas, Settings(test_mode=True)).process(_command("/bin/x"), now=NOW)
    assert isinstance(decision, RunCommand)
    assert decision.test_only and decision.stanza == 1


def test_a_command_of_more_than_28_words_is_not_run_and_stops_the_packet(tmp_path: Path) -> None:
    stanzas = _load(tmp_path, STANZA + "ENABLE_CMD_EXEC Y\n" + STANZA + "ENABLE_CMD_EXEC Y\n")
    processor = Processor(stanzas, Settings())
    # the real fwknopd ran a command of 28 words and refused one of 29 ("returned -6")
    ok = processor.process(_command("/x " + " ".join("a" * 27)), now=NOW)
    assert isinstance(ok, RunCommand) and len(ok.argv) == 28
    refused = processor.process(_command("/x " + " ".join("b" * 28)), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.COMMAND_WORDS
    assert [a[0] for a in refused.attempts] == [1]  # no other stanza was tried
    # with sudo, its prefix counts too (our "--" does not: fwknopd has none)
    sudo = _load(tmp_path, STANZA + "ENABLE_CMD_EXEC Y\nENABLE_CMD_SUDO_EXEC Y\n")
    fits = Processor(sudo, Settings()).process(_command("/x " + " ".join("c" * 26)), now=NOW)
    assert isinstance(fits, RunCommand) and len(fits.argv) == MAX_WORDS + 1
    too_long = Processor(sudo, Settings()).process(_command("/x " + " ".join("c" * 27)), now=NOW)
    assert isinstance(too_long, Refused) and too_long.reason is Reason.COMMAND_WORDS


def test_a_cycle_stanza_runs_its_commands_for_an_access_request(tmp_path: Path) -> None:
    stanzas = _load(
        tmp_path,
        STANZA + f"CMD_CYCLE_OPEN {OPEN}\nCMD_CYCLE_CLOSE /c $IP $PORT $CLIENT_TIMEOUT\n"
        "CMD_CYCLE_TIMER 3\n",
    )
    for test_mode in (False, True):  # cycles run in --test mode too, as fwknopd's do
        processor = Processor(stanzas, Settings(test_mode=test_mode))
        decision = processor.process(_access("tcp/22,udp/53"), now=NOW + 1)
        # the first proto/port is the one used
        assert decision == RunCycle(
            f"/tmp/exp/rec.sh open 198.18.0.2 198.18.0.2 198.18.0.2 198.18.0.1 22 6 {NOW + 3} 3 "
            "FOO  x 198.18.0.2X 22",
            "/c 198.18.0.2 22 3",
            3,
            SRC,
            SRC,
            1,
            "u",
        )
    timed = Processor(stanzas, Settings()).process(_access("udp/53", timeout=2), now=NOW)
    assert isinstance(timed, RunCycle)  # the client may ask for less than the timer
    assert timed.close_after == 2 and timed.close_text == "/c 198.18.0.2 53 2"
    # 0.0.0.0 (the client's -s): the packet's source stands in for $IP
    zero = Processor(stanzas, Settings()).process(_access("tcp/22", allow="0.0.0.0"), now=NOW)
    assert isinstance(zero, RunCycle) and zero.close_text == "/c 198.18.0.2 22 3"


def test_a_cycle_closes_no_later_than_its_timer(tmp_path: Path) -> None:
    # fwknopd 2.6.10 waits the client's timeout (up to 65536 s) before the close command
    stanzas = _load(
        tmp_path, STANZA + "CMD_CYCLE_OPEN /o $CLIENT_TIMEOUT $TIMEOUT\nCMD_CYCLE_CLOSE /c\n"
        "CMD_CYCLE_TIMER 30\n",
    )  # fmt: skip
    decision = Processor(stanzas, Settings()).process(_access("tcp/22", timeout=65536), NOW)
    assert isinstance(decision, RunCycle)
    assert decision.close_after == 30 and decision.open_text == f"/o 30 {NOW + 30}"
    # with CMD_CYCLE_CLOSE NONE there is nothing to close, and no timer to cap the variables
    (none,) = _load(tmp_path, STANZA + "CMD_CYCLE_OPEN /o $CLIENT_TIMEOUT\nCMD_CYCLE_CLOSE NONE\n")
    assert none.cycle is not None and none.cycle.close_after(500) == 500


def test_a_cycle_opens_only_ports_its_stanza_allows(tmp_path: Path) -> None:
    # fwknopd 2.6.10 skips OPEN_PORTS and RESTRICT_PORTS for a cycle stanza
    stanzas = _load(
        tmp_path, STANZA + "CMD_CYCLE_OPEN /o $PORT\nCMD_CYCLE_CLOSE /c\nCMD_CYCLE_TIMER 3\n"
        "OPEN_PORTS tcp/22, tcp/80\nRESTRICT_PORTS tcp/80\n",
    )  # fmt: skip
    processor = Processor(stanzas, Settings())
    assert isinstance(processor.process(_access("tcp/22"), NOW), RunCycle)
    for spec in ("tcp/23", "tcp/22,udp/53", "tcp/80"):
        refused = processor.process(_access(spec), NOW)
        assert isinstance(refused, Refused) and refused.reason is Reason.PORTS, spec


def test_a_command_message_to_a_cycle_stanza_is_refused(tmp_path: Path) -> None:
    # the real fwknopd: "Could not build CMD_CYCLE_OPEN command."
    stanzas = _load(
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC Y\nCMD_CYCLE_OPEN /o $IP\nCMD_CYCLE_CLOSE NONE\n",
    )
    refused = Processor(stanzas, Settings()).process(_command("/bin/true"), now=NOW)
    assert isinstance(refused, Refused) and refused.reason is Reason.CYCLE


# -- running commands ------------------------------------------------------------------


def test_a_command_runs_with_an_empty_environment_in_the_root_directory() -> None:
    env = run_argv(["env"], None, 10)
    assert env == Outcome(status=0)  # found on /bin:/usr/bin, and printed nothing
    pwd = run_argv(["/bin/pwd"], None, 10)
    assert pwd.status == 0 and pwd.output == b"/\n"
    assert run_argv(["false"], None, 10).status == 1
    missing = run_argv(["rec.sh", "x"], None, 10)
    assert missing.error == f"rec.sh: not found in {DEFAULT_PATH}"
    assert run_argv(["/no/such/program"], None, 10).error is not None
    # no shell: a metacharacter is just a word
    echoed = run_argv(["echo", "$HOME", ";", "|x"], None, 10)
    assert echoed.output == b"$HOME ; |x\n"


def test_a_command_that_runs_too_long_is_killed_with_its_children() -> None:
    started = time.monotonic()
    outcome = run_argv(["/bin/sh", "-c", "sleep 30 & echo $!; wait"], None, 0.5)
    assert time.monotonic() - started < 20  # killed at its timeout, not after its 30 s
    assert outcome.timed_out
    child = int(outcome.output.split()[0])
    assert _gone(child)
    chatty = run_argv(["yes"], None, 0.3)  # endless output: kept bounded, killed on time
    assert chatty.timed_out and 0 < len(chatty.output) <= 512


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # killed, not reaped
    except OSError:
        return True


def _gone(pid: int) -> bool:
    return wait_for(lambda: _dead(pid))


def test_a_command_exits_early_even_if_a_child_keeps_its_output_open() -> None:
    outcome = run_argv(["/bin/sh", "-c", "sleep 60 & echo $!; exit 4"], None, 30)
    assert outcome.status == 4
    child = int(outcome.output.split()[0])
    try:  # it returned while the child still holds the output open: it did not wait for it
        assert not _dead(child)
    finally:
        os.kill(child, signal.SIGKILL)  # ours (the shell's child), by its PID


@pytest.mark.skipif(not ROOT, reason="changing user needs root")
def test_a_command_runs_as_the_configured_user_and_group_only() -> None:
    outcome = run_argv(["id"], RunAs(65534, 65534, "nobody", None), 10)
    assert outcome.status == 0
    assert outcome.output.startswith(b"uid=65534(nobody) gid=65534(nogroup) groups=65534")
    grouped = run_argv(["id", "-G"], RunAs(None, 1, None, "daemon"), 10)
    assert grouped.output == b"1\n"


class FakeSpawn:
    """Records what would run; each call waits for ``release`` (when set) first."""

    def __init__(self, *, block: bool = False) -> None:
        self.calls: list[tuple[tuple[str, ...], RunAs | None, float, float]] = []
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.status = 0

    def __call__(self, argv: Sequence[str], run_as: RunAs | None, timeout: float) -> Outcome:
        self.release.wait(10)
        self.calls.append((tuple(argv), run_as, timeout, time.monotonic()))
        return Outcome(status=self.status)


def _run_command(argv: tuple[str, ...], **kwargs: Any) -> RunCommand:
    return RunCommand(" ".join(argv), argv, None, SRC, SRC, 1, "u", **kwargs)


def test_the_executor_never_blocks_its_caller_and_logs_as_fwknopd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawn = FakeSpawn(block=True)
    executor = CommandExecutor(timeout=7, spawn=spawn)
    as_nobody = RunCommand("id -u", ("id", "-u"), RunAs(65534, 65534, "nobody"), SRC, SRC, 2, "u")
    with caplog.at_level(logging.DEBUG, "fwknop_server"):
        future = executor.run(as_nobody)
        # queued: the caller goes on while the spawn waits for its release
        assert future is not None and not future.done()
        spawn.release.set()
        assert future.result(10) == Outcome(status=0)
        spawn.status = 3
        failing = executor.run(_run_command(("false",)))
        assert failing is not None and failing.result(10).status == 3
        assert executor.run(_run_command(("/bin/x",), test_only=True)) is None
        executor.shutdown()
    assert spawn.calls[0][:3] == (("id", "-u"), RunAs(65534, 65534, "nobody"), 7)
    assert len(spawn.calls) == 2  # the test-mode one never ran
    lines = [r.getMessage() for r in caplog.records if r.name == "fwknop_server.cmdexec"]
    assert lines == [
        "[198.18.0.2] (stanza #2) Processing SPA Command message: command='id -u'.",
        "[198.18.0.2] (stanza #2) Running command 'id -u' setuid/setgid user/group to "
        "nobody/nobody (UID=65534,GID=65534)",
        "[198.18.0.2] (stanza #2) CMD_EXEC: command returned 0, pid_status: 0",
        "[198.18.0.2] (stanza #1) Processing SPA Command message: command='false'.",
        "[198.18.0.2] (stanza #1) Running command 'false'",
        "[198.18.0.2] (stanza #1) CMD_EXEC: command returned 0, pid_status: 3",
        "[198.18.0.2] (stanza #1) --test mode enabled, skipping command execution.",
    ]


def test_a_busy_executor_refuses_rather_than_queueing_without_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawn = FakeSpawn(block=True)
    executor = CommandExecutor(spawn=spawn, workers=1)
    futures = [executor.run(_run_command(("/bin/sleep", str(i)))) for i in range(70)]
    assert sum(f is None for f in futures) == 6  # 64 wait, the rest are refused
    assert "64 commands are waiting already; not run" in caplog.text
    spawn.release.set()
    executor.shutdown()
    assert len(spawn.calls) == 64


def _cycle(close_after: float, close: str | None = "/close $x") -> RunCycle:
    return RunCycle("/open a  b", close, int(close_after), SRC, SRC, 1, "u")


def test_a_cycle_closes_after_its_timer_and_never_before_its_open_is_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawn = FakeSpawn(block=True)

    async def run() -> None:
        executor = CommandExecutor(spawn=spawn)
        executor.start(asyncio.get_running_loop())
        opened_at = time.monotonic()
        executor.cycle(_cycle(1))
        await asyncio.sleep(1.5)  # past the timer, but the open command is still running
        assert spawn.calls == [] and executor.pending_closes() == 1
        spawn.release.set()
        await wait_for_async(lambda: len(spawn.calls) == 2)
        assert [c[0] for c in spawn.calls] == [("/open", "a", "b"), ("/close", "$x")]
        assert spawn.calls[1][3] - opened_at >= 1.0
        executor.cycle(_cycle(1, None))  # CMD_CYCLE_CLOSE NONE: nothing to close
        assert executor.pending_closes() == 0
        executor.shutdown()

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if r.name == "fwknop_server.cmdexec"]
    assert lines[:5] == [
        "[198.18.0.2] (stanza #1) Running CMD_CYCLE_OPEN command: /open a  b",
        "[198.18.0.2] (stanza #1) Running CMD_CYCLE_CLOSE command in 1 seconds: /close $x",
        "[198.18.0.2] (stanza #1) CMD_CYCLE_OPEN: command returned 0, pid_status: 0",
        "[198.18.0.2] (stanza #1) Timer expired, running CMD_CYCLE_CLOSE command: /close $x",
        "[198.18.0.2] (stanza #1) CMD_CYCLE_CLOSE: command returned 0, pid_status: 0",
    ]


def test_pending_closes_run_at_shutdown() -> None:
    spawn = FakeSpawn()

    async def run() -> None:
        executor = CommandExecutor(spawn=spawn)
        executor.start(asyncio.get_running_loop())
        executor.cycle(_cycle(3600))
        # the open command is done and the close's timer is set (nothing public tells)
        assert await wait_for_async(
            lambda: all(close.handle is not None for close in executor._closes.values())
        )
        executor.shutdown()
        assert [c[0] for c in spawn.calls] == [("/open", "a", "b"), ("/close", "$x")]
        assert executor.pending_closes() == 0

    asyncio.run(run())


def test_the_daemon_hands_commands_and_cycles_to_its_executor(tmp_path: Path) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nSUDO_EXE /opt/sudo\n")
    access = tmp_path / "access.conf"
    access.write_text(
        "SOURCE 198.18.0.3\n"
        + STANZA.split("\n", 1)[1]
        + "CMD_CYCLE_OPEN /o $IP\nCMD_CYCLE_CLOSE NONE\n"
        + STANZA
        + "ENABLE_CMD_EXEC Y\nENABLE_CMD_SUDO_EXEC Y\n"
    )
    options = Options(config_file=conf, access_paths=(access,))
    daemon = Daemon(
        options, load(options), firewall=LogOnly(flush_at_init=False, flush_at_exit=False),
        clock=lambda: NOW,
    )  # fmt: skip
    spawn = FakeSpawn()
    daemon.dispatch.commands = daemon.commands = CommandExecutor(spawn=spawn)

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        cycle = _access("tcp/22")._replace(src=ipaddress.ip_address("198.18.0.3"))
        daemon.dispatch.handle_all([_command("id -u"), cycle, _access("tcp/22")], NOW)
        daemon.commands.shutdown()

    asyncio.run(run())
    assert sorted(c[0] for c in spawn.calls) == [
        ("/o", "198.18.0.2"),  # the allow IP in the packet (198.18.0.2), sent from .3
        ("/opt/sudo", "--", "id", "-u"),
    ]
    assert daemon.refusals.counts == {"command": 1, "cycle": 1, "granted": 1}
    assert (SRC, "tcp", 22) in daemon.firewall.open  # access requests still open ports
