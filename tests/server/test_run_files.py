"""The run directory, its files, the configuration's modes, and core dumps.

Before: any run directory was taken (group- or world-writable, another
user's), the PID file and the replay journal were opened through symbolic
links, the replay cache was chmod'ed through one (a link to /etc/shadow
made it 0600 root's, a link to a user's file made that file root's to
write), config files any user could read (access.conf holds the keys) drew
no warning, and a crash could leave the keys in a core file.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwknop_server.pidfile import PidFile
from fwknop_server.replay.sqlite import ReplayCache, journal_path
from fwknop_server.runfiles import UnsafePathError, check_run_dir
from fwknop_server.settings import Options, load
from fwknop_server.vocab import Packet

from tests.helpers.ourd import FWKNOPD, write_private
from tests.helpers.wait import START, LogFile

NOBODY = 65534
STANZA = "SOURCE ANY\nKEY_BASE64 " + "a2V5" * 8 + "\n"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(tmp_path: Path, run: Path) -> list[str]:
    conf = write_private(
        tmp_path / "fwknopd.conf",
        f"FWKNOP_RUN_DIR {run}\nFIREWALL_TYPE log\nENABLE_UDP_SERVER Y\n"
        f"UDPSERV_PORT {_free_udp_port()}\n",
    )
    access = write_private(tmp_path / "access.conf", STANZA)
    return ["-c", str(conf), "-a", str(access)]


def _fwknopd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FWKNOPD, "-f", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    """A file a symbolic link in the run directory points to: it must stay as it is."""
    path = tmp_path / "victim"
    path.write_text("precious\n")
    path.chmod(0o644)
    yield path
    assert path.read_text() == "precious\n"
    assert path.stat().st_mode & 0o777 == 0o644


# -- the run directory -------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777])
def test_a_run_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(mode)
    with pytest.raises(UnsafePathError, match="writable by group or others"):
        check_run_dir(run)
    res = _fwknopd(*_files(tmp_path, run))  # the real daemon refuses to start
    assert res.returncode == 1, res.stderr
    assert f"run directory {run} is writable by group or others" in res.stderr
    assert not (run / "fwknopd.pid").exists()


def test_a_run_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    os.chown(run, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=f"belongs to uid {NOBODY}"):
        check_run_dir(run)
    res = _fwknopd(*_files(tmp_path, run))
    assert res.returncode == 1
    assert f"belongs to uid {NOBODY}, not to uid {os.geteuid()}" in res.stderr


def test_a_missing_run_directory_is_created_0700_and_a_good_one_taken(tmp_path: Path) -> None:
    run = tmp_path / "a" / "run"
    check_run_dir(run)
    assert run.stat().st_mode & 0o777 == 0o700
    run.chmod(0o755)  # readable by others is fine: only writing is dangerous
    check_run_dir(run)


# -- files in it: never through a symbolic link ------------------------------------


def test_a_pid_file_that_is_a_symbolic_link_is_refused(tmp_path: Path, victim: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "fwknopd.pid").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        PidFile(run / "fwknopd.pid").acquire()
    res = _fwknopd(*_files(tmp_path, run))
    assert res.returncode == 1
    assert f"{run}/fwknopd.pid is a symbolic link: refused, never followed" in res.stderr


@pytest.mark.parametrize("which", ["journal", "database"])
def test_a_replay_file_that_is_a_symbolic_link_is_refused_never_followed(
    tmp_path: Path, victim: Path, which: str
) -> None:
    path = tmp_path / "run" / "replay.sqlite"
    path.parent.mkdir(mode=0o700)
    if which == "journal":
        ReplayCache(path, max_age=120).close()  # a database exists; its journal is a link
        journal_path(path).unlink()
        journal_path(path).symlink_to(victim)
    else:
        path.symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        ReplayCache(path, max_age=120)


def test_run_files_are_made_0600_through_their_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "run" / "replay.sqlite"
    path.parent.mkdir(mode=0o700)
    path.touch(mode=0o644)
    cache = ReplayCache(path, max_age=120)
    cache.add("d" * 43, Packet(b"", ipaddress.ip_address("198.18.0.2")), 2e9)
    cache.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert journal_path(path).stat().st_mode & 0o777 == 0o600
    assert len(ReplayCache(path, max_age=120, now=1e9)) == 1


# -- configuration files other users can read or write ------------------------------


def _load(tmp_path: Path, conf_mode: int, access_mode: int) -> list[str]:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    conf.chmod(conf_mode)
    access = tmp_path / "access.conf"
    access.write_text(STANZA)
    access.chmod(access_mode)
    warnings: list[str] = []
    load(Options(config_file=conf, access_paths=(access,)), warnings)
    return [w for w in warnings if w.startswith("[-] file:")]


def test_config_files_others_can_read_or_write_draw_fwknopds_warning(tmp_path: Path) -> None:
    assert _load(tmp_path, 0o600, 0o600) == []
    assert _load(tmp_path, 0o400, 0o600) == []
    assert _load(tmp_path, 0o644, 0o640) == [
        f"[-] file: {tmp_path}/fwknopd.conf permissions should only be user read/write "
        "(0600, -rw-------)",
        f"[-] file: {tmp_path}/access.conf permissions should only be user read/write "
        "(0600, -rw-------)",
    ]
    assert len(_load(tmp_path, 0o602, 0o600)) == 1
    os.chown(tmp_path / "access.conf", NOBODY, NOBODY)
    assert _load(tmp_path, 0o600, 0o600) == [
        f"[-] file: {tmp_path}/access.conf (owner: {NOBODY}) not owned by current effective "
        f"user id: {os.geteuid()}"
    ]


def test_the_real_daemon_warns_about_a_world_readable_access_conf(tmp_path: Path) -> None:
    args = _files(tmp_path, tmp_path / "run")
    Path(args[3]).chmod(0o644)
    res = _fwknopd(*args, "--exit-parse-config")
    assert res.returncode == 0, res.stderr
    assert f"[-] file: {args[3]} permissions should only be user read/write" in res.stderr


# -- core dumps --------------------------------------------------------------------


def test_the_running_daemon_can_leave_no_core_dump(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "stderr")
    with log.path.open("w") as err:
        proc = subprocess.Popen([FWKNOPD, "-f", *_files(tmp_path, tmp_path / "run")], stderr=err)
    try:
        assert log.wait("Starting fwknopd main event loop", timeout=START,
                        alive=lambda: proc.poll() is None), log.text()  # fmt: skip
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        (core,) = [line for line in limits.splitlines() if line.startswith("Max core file size")]
        assert core.split()[4:6] == ["0", "0"], core  # soft and hard: it cannot raise it again
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_as_root_the_process_is_not_dumpable() -> None:
    if os.geteuid() != 0:
        pytest.skip("PR_SET_DUMPABLE is set only when fwknopd runs as root")
    code = (
        "import ctypes, resource; from fwknop_server.hardening import no_core_dumps, "
        "PR_GET_DUMPABLE as G; no_core_dumps(); libc = ctypes.CDLL(None); "
        "print(libc.prctl(G, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split(maxsplit=1) == ["0", "(0, 0)\n"]
