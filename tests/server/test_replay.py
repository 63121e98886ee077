"""The replay cache survives restarts, forgets what can no longer be replayed, imports fwknopd's."""

from __future__ import annotations

import ipaddress
import sqlite3
import stat
from pathlib import Path

from fwknop_server.replay.sqlite import ReplayCache, journal_path, rotate
from fwknop_server.vocab import Packet

PACKET = Packet(b"x", ipaddress.ip_address("198.18.0.2"), ipaddress.ip_address("198.18.0.1"))
D1, D2 = "A" * 43, "B" * 43


def test_digests_survive_a_restart_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "run" / "replay.sqlite"
    cache = ReplayCache(path, max_age=120, now=1000)
    cache.add(D1, PACKET, expires=1200, now=1000)
    assert cache.seen(D1) and not cache.seen(D2)
    cache.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ReplayCache(path, max_age=120, now=1100)
    assert again.seen(D1) and len(again) == 1
    again.close()


def test_entries_are_pruned_once_they_cannot_be_replayed(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    cache = ReplayCache(path, max_age=120, now=1000)
    cache.add(D1, PACKET, expires=1100)
    cache.add(D2, PACKET, expires=5000)
    assert cache.prune(1101) == 1
    assert not cache.seen(D1) and cache.seen(D2)
    cache.close()
    assert not ReplayCache(path, max_age=120, now=1101).seen(D1)  # gone from the file too


def test_without_packet_aging_nothing_is_forgotten(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "r.sqlite", max_age=None, now=0)
    cache.add(D1, PACKET, expires=float("inf"))
    assert cache.prune(10**12) == 0 and cache.seen(D1)


def test_fwknopds_text_cache_is_imported(tmp_path: Path) -> None:
    legacy = tmp_path / "digest.cache"
    legacy.write_text(
        "# <digest> <proto> <src_ip> <src_port> <dst_ip> <dst_port> <time>\n"
        f"{D1} 17 198.18.0.2 40000 198.18.0.1 62201 1000\n"
        f"{D2} 17 198.18.0.2 40001 198.18.0.1 62201 100\n"  # too old to replay at 1100
        "garbage line\n"
    )
    cache = ReplayCache(tmp_path / "r.sqlite", max_age=120, legacy_file=legacy, now=1100)
    assert cache.seen(D1) and not cache.seen(D2)


def test_rotate_moves_the_cache_aside(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    cache = ReplayCache(path, max_age=120, now=0)
    cache.add(D1, PACKET, expires=10**9)
    cache.close()
    cache = ReplayCache(path, max_age=120, now=0)
    cache.add(D2, PACKET, expires=10**9)  # only in the journal: no close()
    old = rotate(path)
    assert old == tmp_path / "r.sqlite-old" and old.exists()
    assert journal_path(old).exists() and not journal_path(path).exists()
    assert not ReplayCache(path, max_age=120, now=0).seen(D1)
    assert rotate(tmp_path / "missing") is None


def test_a_digest_is_on_disk_before_add_returns_and_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    cache = ReplayCache(path, max_age=120, now=1000)
    cache.add(D1, PACKET, expires=1200, now=1000)
    pending = journal_path(path)
    assert D1.encode() in pending.read_bytes()  # written through, not held in memory
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    # the daemon is killed here: no close(), nothing folded into SQLite
    with pending.open("ab") as f:
        f.write(b"B" * 43 + b"\t12")  # and a line cut short by a power cut is ignored
    again = ReplayCache(path, max_age=120, now=1100)
    assert again.seen(D1) and not again.seen(D2) and len(again) == 1
    assert pending.read_bytes() == b""  # folded into SQLite at start
    again.close()
    assert ReplayCache(path, max_age=120, now=1100).seen(D1)


def test_pruning_folds_the_journal_into_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    cache = ReplayCache(path, max_age=120, now=1000)
    cache.add(D1, PACKET, expires=1200, now=1000)
    cache.add(D2, PACKET, expires=1050, now=1000)
    assert cache.prune(1100) == 1
    assert journal_path(path).read_bytes() == b""
    rows = sqlite3.connect(path).execute("SELECT digest, proto, src, dst FROM replay").fetchall()
    assert rows == [(D1, 17, "198.18.0.2", "198.18.0.1")]
    cache.add(D2, PACKET._replace(dst=None), expires=1300, now=1100)  # after a truncate: appended
    cache.close()
    rows = (
        sqlite3.connect(path).execute("SELECT digest, dst FROM replay ORDER BY digest").fetchall()
    )
    assert rows == [(D1, "198.18.0.1"), (D2, None)]
