"""The knock history: what each knock did, when, and how long it took (never key material).

One JSON object per line in ``history.jsonl`` in the state directory. A
record is appended with a single ``write`` on an ``O_APPEND`` descriptor, so
two writers (the TUI and a ``fwknop send`` in another terminal) interleave
whole lines; once the file holds twice ``limit`` records it is rewritten
atomically with the newest ``limit``. A line that does not parse (a crash in
the middle of a write, a hand edit) is skipped, never fatal: the history is
a convenience, and losing it must never stop a knock.

What goes in is what the user saw: stage names, timings, the short details
the knock reported (host, address, transport, ports) and error messages,
which by the client's own rule never hold a key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .wallet.locations import state_dir

if TYPE_CHECKING:
    from .send import KnockResult, StageReport

__all__ = ["HISTORY_LIMIT", "KnockHistory", "KnockRecord", "StageRecord"]

HISTORY_LIMIT = 1000


@dataclass(frozen=True)
class StageRecord:
    """One stage of a recorded knock."""

    stage: str
    ok: bool
    seconds: float
    detail: str = ""

    @classmethod
    def of(cls, report: StageReport) -> StageRecord:
        """From a live stage report."""
        return cls(report.stage.value, report.ok, report.seconds, report.detail)


@dataclass(frozen=True)
class KnockRecord:
    """One knock: its profile, start time, outcome, total time and stages."""

    profile: str
    when: float
    ok: bool
    seconds: float
    summary: str
    stages: tuple[StageRecord, ...] = field(default=())

    @property
    def failed_stage(self) -> str | None:
        """The stage that failed, if one did."""
        return next((s.stage for s in self.stages if not s.ok), None)

    @property
    def headline(self) -> str:
        """One line: how the knock ended (the stages say the rest)."""
        took = f"{self.seconds * 1000:.0f} ms"
        if not self.ok:
            failed = next((s for s in self.stages if not s.ok), None)
            if failed is None:
                return f"Failed: {self.summary}"
            return f"Failed at {failed.stage}: {failed.detail or self.summary}"
        last = self.stages[-1].stage if self.stages else ""
        if last == "verify":
            return f"Knocked in {took}: the port answered."
        if last == "server":
            return f"Knocked in {took}: fwknopd accepted it."
        if last == "build":
            return f"Built in {took} (dry run, not sent)."
        return f"Sent in {took}. Set a verify target to be told the port opened."

    @classmethod
    def of_result(cls, result: KnockResult, when: float) -> KnockRecord:
        """A finished knock (``ok`` is False when the verify probe never got an answer)."""
        ok = result.verify is None or result.verify.ok
        # the verify stage ran without error even when the port never answered: mark it
        stages = tuple(
            StageRecord(
                s.stage.value, s.ok and (ok or s.stage.value != "verify"), s.seconds, s.detail
            )
            for s in result.stages
        )
        what = f"{result.message_type} for {result.request}"
        where = f"{result.transport} to {result.address} port {result.port}"
        summary = f"{what}: {'built, not sent' if not result.sent else 'sent ' + where}"
        if result.verify is not None:
            v = result.verify
            state = "open" if v.ok else "did not answer"
            summary += f"; {v.host}:{v.port} {state} after {v.attempts} attempt(s)"
        return cls(result.profile, when, ok, sum(s.seconds for s in stages), summary, stages)

    @classmethod
    def of_failure(
        cls, profile: str, when: float, stages: Iterable[StageReport], error: str
    ) -> KnockRecord:
        """A knock stopped by an error (``stages`` ends with the failed one)."""
        done = tuple(StageRecord.of(s) for s in stages)
        return cls(profile, when, False, sum(s.seconds for s in done), error, done)

    def to_json(self) -> str:
        """One line of the history file."""
        data: dict[str, Any] = {
            "profile": self.profile,
            "when": round(self.when, 3),
            "ok": self.ok,
            "seconds": round(self.seconds, 6),
            "summary": self.summary,
            "stages": [[s.stage, s.ok, round(s.seconds, 6), s.detail] for s in self.stages],
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> KnockRecord:
        """Parse one line; ``ValueError`` (or ``KeyError``/``TypeError``) if it is not one."""
        data = json.loads(line)
        stages = tuple(
            StageRecord(str(s), bool(ok), float(sec), str(detail))
            for s, ok, sec, detail in data.get("stages", [])
        )
        return cls(
            str(data["profile"]),
            float(data["when"]),
            bool(data["ok"]),
            float(data["seconds"]),
            str(data["summary"]),
            stages,
        )


class KnockHistory:
    """The history file: append a record, read them back, rename or forget a profile."""

    def __init__(self, path: Path | None = None, *, limit: int = HISTORY_LIMIT) -> None:
        self.path = path if path is not None else state_dir() / "history.jsonl"
        self.limit = limit

    def load(self) -> list[KnockRecord]:
        """Every readable record, oldest first."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        out: list[KnockRecord] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                out.append(KnockRecord.from_json(line))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def last_by_profile(self) -> dict[str, KnockRecord]:
        """The newest record of each profile."""
        return {r.profile: r for r in self.load()}

    def append(self, record: KnockRecord) -> None:
        """Add a record (best effort: an unwritable history is not an error for the knock)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (record.to_json() + "\n").encode())
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
        except OSError:
            return
        # about 300 bytes a record: only look at the line count when the file could be too long
        if size > self.limit * 2 * 200:
            records = self.load()
            if len(records) > self.limit * 2:
                self._rewrite(records[-self.limit :])

    def rename(self, old: str, new: str) -> None:
        """Carry a profile's records over to its new name."""
        records = self.load()
        if any(r.profile == old for r in records):
            self._rewrite(
                [
                    KnockRecord(new, r.when, r.ok, r.seconds, r.summary, r.stages)
                    if r.profile == old
                    else r
                    for r in records
                ]
            )

    def forget(self, profile: str) -> None:
        """Drop a deleted profile's records."""
        records = self.load()
        if any(r.profile == profile for r in records):
            self._rewrite([r for r in records if r.profile != profile])

    def _rewrite(self, records: list[KnockRecord]) -> None:
        from .wallet.profiles import atomic_write  # noqa: PLC0415

        try:
            atomic_write(self.path, "".join(r.to_json() + "\n" for r in records), mode=0o600)
        except OSError:
            return
