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


def progress_bar(sent: int, total: int, width: int = 12) -> Text:
    """A bar of ``width`` cells, filled in proportion to the knocks sent."""
    done = min(width, (sent * width) // total) if total > 0 else 0
    return Text.assemble(
        (glyphs.BAR_DONE * done, "bold cyan"), (glyphs.BAR_TODO * (width - done), "dim")
    )


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
    progress: tuple[int, int] | None = None  # a knock sequence's knocks: sent, total

    def with_progress(self, sent: int, total: int) -> KnockState:
        """The state after another knock of a sequence went out."""
        return replace(self, progress=(sent, total))

    @property
    def progress_text(self) -> str:
        """``3 of 12 knocks sent`` while a sequence goes out, else nothing."""
        if self.progress is None or not self.running:
            return ""
        sent, total = self.progress
        return f"{sent} of {total} knocks sent"

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
                    doing = Text("")
                    if name == "send" and state.progress is not None:
                        doing = Text.assemble(
                            progress_bar(*state.progress), " ", state.progress_text
                        )
                    grid.add_row(Text("…", "bold cyan"), Text(name, "bold"), "", doing)
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
