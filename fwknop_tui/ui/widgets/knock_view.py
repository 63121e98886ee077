"""The stages of one knock (keys, resolve, build, send, verify, and the demo server's verdict)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ...history import KnockRecord, StageRecord
from .. import glyphs

__all__ = ["KnockState", "KnockView"]

_MARK = {True: (glyphs.OK, "bold green"), False: (glyphs.FAIL, "bold red")}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


@dataclass(frozen=True)
class KnockState:
    """A knock as the view shows it: the stages expected, those done, and the outcome."""

    profile: str
    expected: tuple[str, ...]
    done: tuple[StageRecord, ...] = ()
    running: bool = True
    ok: bool | None = None
    outcome: str = ""
    advice: str = ""
    when: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def with_stage(self, stage: StageRecord) -> KnockState:
        """The state after one more stage."""
        expected = self.expected
        if stage.stage not in expected:
            expected = (*expected, stage.stage)
        return replace(self, done=(*self.done, stage), expected=expected)

    def finished(self, ok: bool, outcome: str, advice: str = "") -> KnockState:
        """The final state."""
        return replace(self, running=False, ok=ok, outcome=outcome, advice=advice)

    @classmethod
    def of_record(cls, record: KnockRecord, advice: str = "") -> KnockState:
        """A knock from the history."""
        return cls(
            record.profile,
            tuple(s.stage for s in record.stages),
            record.stages,
            running=False,
            ok=record.ok,
            outcome=record.headline,
            advice=advice,
            when=record.when,
        )


class KnockView(Static):
    """Shows a ``KnockState``: one line per stage, then the outcome and what to try."""

    def show(self, state: KnockState | None, *, empty: str = "") -> None:
        """Render a knock (or ``empty`` when there is none)."""
        if state is None:
            self.update(Text(empty, style="dim"))
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column(no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")
        done = {s.stage: s for s in state.done}
        pending_marked = False
        for name in state.expected:
            stage = done.get(name)
            if stage is None:
                if state.running and not pending_marked:
                    grid.add_row(Text("…", "bold cyan"), Text(name, "bold"), "", "")
                    pending_marked = True
                else:
                    grid.add_row(Text("·", "dim"), Text(name, "dim"), "", "")
                continue
            mark, style = _MARK[stage.ok]
            grid.add_row(
                Text(mark, style),
                name,
                Text(_ms(stage.seconds), "dim"),
                Text(stage.detail, "" if stage.ok else "red"),
            )
        if state.running:
            self.update(grid)
            return
        outcome = Text(state.outcome, "bold green" if state.ok else "bold red")
        parts: list[Text | Table] = [grid, Text(""), outcome]
        if state.advice:
            parts.append(Text.assemble(("Try: ", "bold"), state.advice))
        self.update(Group(*parts))
