"""After every SIGHUP reload, refused or failed too, systemd hears READY=1 again.

With ``Type=notify-reload`` systemd waits, after ``RELOADING=1``, for
``READY=1``; a daemon that never sends it stays "reloading" and the next
``systemctl reload`` times out. The socket here is the test's own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwknop_server import daemon as daemon_module
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall.logonly import LogOnly

STANZA = "SOURCE ANY\nKEY_BASE64 " + "a2V5" * 8 + "\n"


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def _daemon(tmp_path: Path) -> Daemon:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    (tmp_path / "access.conf").write_text(STANZA)
    options = Options(config_file=conf, access_paths=(tmp_path / "access.conf",))
    return Daemon(options, load(options), firewall=LogOnly(flush_at_init=False,
                                                            flush_at_exit=False))  # fmt: skip


def _two(sock: socket.socket) -> tuple[str, str]:
    return sock.recv(4096).decode(), sock.recv(4096).decode()


def test_a_refused_reload_sends_ready_again(tmp_path: Path, notify: socket.socket) -> None:
    daemon = _daemon(tmp_path)
    (tmp_path / "access.conf").write_text(STANZA + "SOURCE 10.0.0.0/99\n")
    daemon.reload()
    reloading, ready = _two(notify)
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert ready == "READY=1\nSTATUS=reload refused: configuration has errors"
    (tmp_path / "access.conf").write_text(STANZA)
    daemon.reload()
    assert _two(notify)[1] == "READY=1\nSTATUS=configuration reloaded"


def test_a_reload_that_fails_otherwise_sends_ready_again_and_keeps_the_policy(
    tmp_path: Path, notify: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    processor = daemon.processor

    def broken(*_args: object) -> None:
        raise PermissionError(13, "Permission denied", "access.conf")

    monkeypatch.setattr(daemon_module, "load", broken)
    daemon.reload()
    reloading, ready = _two(notify)
    assert reloading.startswith("RELOADING=1")
    assert ready == "READY=1\nSTATUS=reload failed: running configuration kept"
    assert daemon.processor is processor
