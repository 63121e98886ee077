"""The demo's fwknopd dies with the TUI: a closed terminal (tmux kill-session) or SIGKILL.

The installed ``fwknop-tui --demo`` runs in a real terminal (a private tmux
server); the test finds the TUI and its demo fwknopd among the processes,
ends the TUI the hard way, and waits for the server to go (and its private
directory, which holds the demo keys, with it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.slow]

TUI = Path(sys.executable).with_name("fwknop-tui")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def _find(root: int, match: Callable[[str], bool]) -> int | None:
    todo = [root]
    while todo:
        pid = todo.pop()
        if match(_cmdline(pid)):
            return pid
        todo += _children(pid)
    return None


def _wait(check: Callable[[], object], timeout: float, what: str) -> None:
    if not wait_for(check, timeout=timeout, interval=0.1):
        raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("how", ["closed terminal", "SIGKILL"])
def test_the_demo_server_does_not_outlive_the_tui(how: str, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed")
    sock = tmp_path / "tmux.sock"
    config = tmp_path / "config"
    env = {
        "HOME": str(tmp_path / "home"),
        "FWKNOP_TUI_CONFIG_DIR": str(config),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "TERM": "xterm-256color",
        "PATH": f"{TUI.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "TZ": "UTC",
    }
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(sock), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )

    started = tmux(
        "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "36", *env_args,
        str(TUI), "--demo",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        _wait(
            lambda: "fwknopd accepted it" in tmux("capture-pane", "-p").stdout,
            60,
            "the demo knock on screen",
        )
        pane = int(tmux("list-panes", "-F", "#{pane_pid}").stdout.split()[0])
        tui = _find(pane, lambda cmd: "fwknop-tui" in cmd)
        assert tui is not None, "the TUI process was not found"
        server = _find(tui, lambda cmd: "fwknop_server" in cmd or "fwknopd -f" in cmd)
        assert server is not None and _alive(server), "the demo fwknopd was not found"
        workdir = Path(os.readlink(f"/proc/{server}/cwd"))
        assert workdir.name.startswith("fwknop-tui-demo-")
        if how == "SIGKILL":
            os.kill(tui, signal.SIGKILL)
        else:
            tmux("kill-session")  # the terminal closes: SIGHUP
        _wait(lambda: not _alive(tui), 30, "the TUI to end")
        _wait(lambda: not _alive(server), 30, "the demo fwknopd to end with the TUI")
        _wait(lambda: not workdir.exists(), 30, "the demo's directory (it holds keys) to go")
    finally:
        tmux("kill-server")
    if how == "closed terminal":  # a clean exit: the demo profile went too
        text = (config / "profiles.toml").read_text() if (config / "profiles.toml").exists() else ""
        assert "[profiles.demo]" not in text
