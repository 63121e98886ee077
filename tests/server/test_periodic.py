"""Every periodic task survives its own failures and tries again until it works.

Before: the daemon's timer let an exception escape (SQLite's "database or
disk is full" once, while the replay journal was folded into the database)
and pruning and merging never ran again, even after space returned; a
failed expiry on the firewall thread set no timer again, so a due grant
stayed open until the next grant came; a failed housekeeping on that
thread was never even logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fwknop_server import daemon as daemon_module
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall import driver as driver_module
from fwknop_server.firewall.base import FirewallError
from fwknop_server.firewall.driver import FirewallDriver
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.vocab import Grant, Packet

from fwknop_core import MessageType

DEADLINE = 30.0
SRC = ipaddress.ip_address("198.18.0.2")


async def _until(what: Callable[[], bool], message: str) -> None:
    """Wait (on the running loop) until ``what()`` holds; fail after ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not what():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _udp_daemon(tmp_path: Path) -> Daemon:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(
        f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nENABLE_UDP_SERVER Y\n"
        f"UDPSERV_PORT {_free_udp_port()}\n"
    )
    access = tmp_path / "access.conf"
    access.write_text("SOURCE ANY\nKEY_BASE64 " + "a2V5" * 8 + "\n")
    options = Options(config_file=conf, access_paths=(access,), foreground=True)
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall)


def test_replay_pruning_survives_a_full_disk_and_merges_once_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(daemon_module, "_PRUNE_EVERY", 0.05)
    daemon = _udp_daemon(tmp_path)
    cache = daemon.replay
    assert cache is not None
    db = cache._db  # type: ignore[attr-defined]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")  # the disk is full: SQLITE_FULL on a write
    packet = Packet(b"", SRC)
    for i in range(300):
        assert cache.add(f"{i:043d}", packet, time.time() + 3600)

    def rows() -> int:
        return int(db.execute("SELECT count(*) FROM replay").fetchone()[0])

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if "pruning failed" in r.getMessage()]

    async def run() -> None:
        task = asyncio.create_task(daemon.run())
        await _until(lambda: bool(failures()), "merging never failed")
        await asyncio.sleep(0.3)  # several rounds, failing
        assert rows() == 0
        db.execute("PRAGMA max_page_count=1000000")  # space returns
        await _until(lambda: rows() == 300, "the journal was never merged after space returned")
        daemon.stop()
        assert await asyncio.wait_for(task, DEADLINE) == 0

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    (failure,) = failures()  # logged once, not every round
    assert "OperationalError: database or disk is full" in failure
    assert any("replay cache pruning works again" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


class FlakyLogOnly(LogOnly):
    """Closing fails ``failures`` times (a firewall command that fails), then works."""

    def __init__(self, failures: int, exc: Exception, *, in_process: bool) -> None:
        super().__init__(flush_at_init=False, flush_at_exit=False)
        self.failures = failures
        self.exc = exc
        self.in_process = in_process  # type: ignore[misc]
        self.housekeeping_calls = 0

    def expire(self, now: float) -> list:  # type: ignore[type-arg]
        if self.failures and self.next_expiry() is not None and self.next_expiry() <= now:  # type: ignore[operator]
            self.failures -= 1
            raise self.exc
        return super().expire(now)

    def housekeeping(self, now: float) -> None:
        self.housekeeping_calls += 1
        if self.housekeeping_calls == 1:
            raise self.exc


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "firewall-thread"])
@pytest.mark.parametrize(
    "exc", [FirewallError("iptables -D failed: exit 4"), OSError(28, "No space left on device")]
)
def test_a_failed_expiry_is_tried_again_until_the_grant_is_closed(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    in_process: bool,
    exc: Exception,
) -> None:
    monkeypatch.setattr(driver_module, "EXPIRY_RETRY", 0.05)
    firewall = FlakyLogOnly(3, exc, in_process=in_process)
    driver = FirewallDriver(firewall)

    async def run() -> None:
        driver.start(asyncio.get_running_loop())
        now = time.time()
        grant = Grant(SRC, None, (("tcp", 22),), 1, int(now) + 1, 1, "u", MessageType.ACCESS)
        await driver.call(firewall.grant, grant, now)
        driver.schedule_expiry()
        await _until(lambda: not firewall.open, "the grant was never closed")
        driver.housekeeping()
        driver.housekeeping()
        await driver.drain()
        await driver.stop(close=False)

    with caplog.at_level(logging.INFO, "fwknop_server"):
        asyncio.run(run())
    assert firewall.failures == 0
    retries = [m for r in caplog.records if "expired grants failed" in (m := r.getMessage())]
    assert len(retries) == 3
    assert str(exc) in retries[0]
    assert firewall.housekeeping_calls == 2
    assert any("housekeeping failed" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
