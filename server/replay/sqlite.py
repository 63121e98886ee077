"""The replay cache: every packet that decrypted, remembered as long as it could be replayed.

fwknopd keeps digests forever in a text file it searches line by line. We
keep them in SQLite (in the run directory by default), so they survive a
restart, with an in-memory index for lookups, so a flood never touches the
disk. An entry lives as long as its packet could still pass the age check
(the packet's timestamp plus ``MAX_SPA_PACKET_AGE``); after that the packet
is refused as stale anyway, and the entry is pruned. With packet aging
turned off there is no such bound and entries are kept, as fwknopd does.

A new digest is on disk before the packet is acted on (fwknopd's order:
the cache is written before any policy check or firewall rule), but not
through SQLite: a transaction costs 0.2 ms on this machine when its caches
are cold (they are, when a knock comes to an idle server), a fifth of the
whole time from packet to rule. Instead one line is appended to a journal
next to the database (``<file>-pending``) with a single write(); the
journal is folded into SQLite when the cache is pruned (every minute) and
at exit, and whatever a crashed run left in it is folded in at the next
start. Both are as durable as SQLite was here (WAL, synchronous=NORMAL):
the write is in the kernel before the grant, so it survives the daemon
being killed; neither is synced to the disk, so a power cut can lose the
last entries, as it loses the grants themselves.

fwknopd's own ``digest.cache`` is imported when present, so switching from
the C daemon to ours opens no replay window.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import time
from pathlib import Path

from ..runfiles import open_private
from ..vocab import Packet

__all__ = ["ReplayCache", "rotate"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replay (
    digest     TEXT PRIMARY KEY,
    keep_until REAL NOT NULL,
    created    REAL NOT NULL,
    proto      INTEGER,
    src        TEXT,
    sport      INTEGER,
    dst        TEXT,
    dport      INTEGER
)
"""
_DIGEST_LEN = 43
_INSERT = "INSERT OR REPLACE INTO replay VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_Row = tuple[str, float, float, int, str, int, str | None, int]


class ReplayCache:
    """Digests of packets that decrypted, in memory and in a SQLite file (or memory only)."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_age: int | None,
        legacy_file: Path | None = None,
        now: float | None = None,
    ) -> None:
        self.path = path
        self.max_age = max_age
        self._index: dict[str, float] = {}
        self._pending: list[_Row] = []  # in the journal, not yet in SQLite
        self._journal: int | None = None
        target = ":memory:" if path is None else str(path)
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # 0600 and a regular file before SQLite opens it: never a symbolic link followed
            os.close(open_private(path, os.O_RDWR | os.O_CREAT))
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        if path is not None:
            journal = open_private(journal_path(path), os.O_RDWR | os.O_APPEND | os.O_CREAT)
            self._journal = journal
            self._recover(journal, journal_path(path))
        current = time.time() if now is None else now
        self.prune(current)
        for digest, keep_until in self._db.execute("SELECT digest, keep_until FROM replay"):
            self._index[digest] = keep_until
        if legacy_file is not None:
            self._import_legacy(legacy_file, current)

    def __len__(self) -> int:
        return len(self._index)

    def seen(self, digest: str) -> bool:
        """Whether ``digest`` belongs to a packet already processed."""
        return digest in self._index

    def add(self, digest: str, packet: Packet, expires: float, now: float | None = None) -> bool:
        """Remember ``digest`` until ``expires``; on disk (the journal) when this returns.

        False (and nothing written) if it was known already: a replay.
        """
        if digest in self._index:
            return False
        self._index[digest] = expires
        row = (
            digest,
            _stored(expires),
            time.time() if now is None else now,
            packet.proto,
            str(packet.src),
            packet.sport,
            None if packet.dst is None else str(packet.dst),
            packet.dport,
        )
        if self._journal is None:
            self._db.execute(_INSERT, row)
            return True
        os.write(self._journal, _journal_line(row))
        self._pending.append(row)
        return True

    def checkpoint(self) -> None:
        """Move what the journal holds into SQLite, then empty the journal."""
        if self._journal is None or not self._pending:
            return
        self._insert(self._pending)
        os.ftruncate(self._journal, 0)  # O_APPEND: the next line goes to the (new) end
        self._pending.clear()

    def prune(self, now: float) -> int:
        """Forget entries that can no longer be replayed; how many went."""
        self.checkpoint()
        gone = [d for d, until in self._index.items() if until < now]
        for digest in gone:
            del self._index[digest]
        self._db.execute("DELETE FROM replay WHERE keep_until < ?", (now,))
        return len(gone)

    def close(self) -> None:
        """Fold the journal in and close the files."""
        self.checkpoint()
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        self._db.close()

    def _insert(self, rows: list[_Row]) -> None:
        """Rows into SQLite in one transaction."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany(_INSERT, rows)
            self._db.execute("COMMIT")  # may fail too ("database or disk is full")
        except BaseException:
            if self._db.in_transaction:  # else the next BEGIN fails, for ever
                self._db.execute("ROLLBACK")
            raise

    def _recover(self, fd: int, journal: Path) -> None:
        """Fold in what a run that did not close its cache left in the journal (open as ``fd``)."""
        chunks, offset = [], 0
        while chunk := os.pread(fd, 1 << 16, offset):
            chunks.append(chunk)
            offset += len(chunk)
        rows = [row for line in b"".join(chunks).splitlines() if (row := _parse_journal_line(line))]
        if rows:
            self._insert(rows)
            log.info("replay cache: %d digest(s) recovered from %s", len(rows), journal)
        os.ftruncate(fd, 0)

    def _import_legacy(self, path: Path, now: float) -> None:
        """Digests from fwknopd's text cache (``digest proto src sport dst dport time`` lines)."""
        try:
            lines = path.read_text(encoding="ascii", errors="replace").splitlines()
        except OSError:
            return
        imported = 0
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) != 7 or len(fields[0]) != _DIGEST_LEN or not fields[6].isdigit():
                log.warning("%s:%d: not a digest cache line, skipped", path, number)
                continue
            created = float(fields[6])
            # fwknopd accepted it within MAX_SPA_PACKET_AGE of its timestamp; it could be
            # replayed for up to that long after the timestamp
            keep_until = math.inf if self.max_age is None else created + 2 * self.max_age + 1
            if keep_until < now or fields[0] in self._index:
                continue
            proto, sport, dport = (int(fields[i]) if fields[i].isdigit() else 0 for i in (1, 3, 5))
            self._index[fields[0]] = keep_until
            self._db.execute(
                "INSERT OR IGNORE INTO replay VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fields[0],
                    _stored(keep_until),
                    created,
                    proto,
                    fields[2],
                    sport,
                    fields[4],
                    dport,
                ),
            )
            imported += 1
        if imported:
            log.info("imported %d digests from fwknopd's cache %s", imported, path)


def journal_path(path: Path) -> Path:
    """Where the cache at ``path`` keeps digests not yet in SQLite."""
    return path.with_name(path.name + "-pending")


def _journal_line(row: _Row) -> bytes:
    # digests are base64 and addresses have no tabs: fields need no quoting
    return ("\t".join("" if v is None else repr(v) if isinstance(v, float) else str(v)
                      for v in row) + "\n").encode()  # fmt: skip


def _parse_journal_line(line: bytes) -> _Row | None:
    """A journal line back to a row; None for anything else (a line cut short by a power cut)."""
    fields = line.decode("ascii", errors="replace").split("\t")
    if len(fields) != 8 or len(fields[0]) != _DIGEST_LEN:
        return None
    try:
        return (
            fields[0], float(fields[1]), float(fields[2]), int(fields[3]), fields[4],
            int(fields[5]), fields[6] or None, int(fields[7]),
        )  # fmt: skip
    except ValueError:
        return None


def _stored(value: float) -> float:
    # SQLite stores inf fine, but keep the column finite and sortable
    return 1e18 if math.isinf(value) else value


def rotate(path: Path) -> Path | None:
    """``--rotate-digest-cache``: move the cache to ``<path>-old``; the new one starts empty."""
    if not path.exists():
        return None
    old = path.with_name(path.name + "-old")
    path.replace(old)
    for suffix in ("-wal", "-shm", "-pending"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).replace(old.with_name(old.name + suffix))
    return old
