"""Waiting in tests: on an event, with a deadline of seconds that holds on a loaded machine.

The suite runs beside other work (CI runners, several engineers on two
cores): a daemon may take seconds to start, the real C fwknopd polls pcap
in a sleep loop and runs several ``iptables`` processes per grant. So:

* Wait for something the system under test does (a log line, a rule, a
  file, a socket that answers), never for a fixed time. ``wait_for`` polls
  a predicate until it holds; it returns as soon as it does, so a generous
  deadline costs nothing when things go well.
* Deadlines are seconds of margin, not the time a quiet machine needs:
  ``DEADLINE`` (30 s) for a reaction (a grant, a log line, an exit),
  ``START`` (60 s) for a daemon to come up.
* When the partner works through a queue (many packets to a real fwknopd),
  pass ``progress`` (say, the packets it has taken): the deadline then
  counts from the last sign of progress, so a slow machine is waited for and
  a stuck daemon still fails. (Not the size of its log: a daemon that logs
  while idle would never be stuck.)
* An absence check ("this packet opened nothing") first waits for the event
  proving the system had its chance (the daemon's log line for that packet,
  or a later packet's grant), then asserts; never "nothing within N s".
* Time that must pass (a grant's lifetime) is a lower bound: make the grant
  long enough that the checks made while it is open fit in it on a slow
  machine, and wait for its end with a deadline.

``LogFile`` follows a daemon's log for ``wait``/``count`` with a mark, so a
test waits for the line of *this* packet rather than any earlier one;
``LoggingDaemon`` gives a daemon helper (ours, the C fwknopd) its log waits.
``read_lines_until`` reads a helper process's output up to the line that
shows it has seen what the test waits for (a capture up to a sentinel
packet sent last). ``wait_process_idle`` waits until a program (a TUI in a terminal) has
handled its input: none of its threads runs or waits for a CPU. A process
the scheduler has not got to yet counts as busy, so load does not fool it
the way "it used little CPU lately" would.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "DEADLINE",
    "START",
    "LogFile",
    "LoggingDaemon",
    "read_lines_until",
    "wait_for",
    "wait_for_async",
    "wait_process_idle",
]

DEADLINE = 30.0  # seconds for a reaction of the system under test
START = 60.0  # seconds for a daemon (or a tmux, a keyring, a firewalld) to come up


def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float = DEADLINE,
    interval: float = 0.05,
    progress: Callable[[], object] | None = None,
) -> bool:
    """Poll ``predicate()`` until true; False after ``timeout`` s (without progress, if given).

    With ``progress``, the deadline restarts whenever ``progress()`` returns
    a new value, up to ten times ``timeout`` in all.
    """
    start = time.monotonic()
    deadline = start + timeout
    limit = start + 10 * timeout
    seen = progress() if progress is not None else None
    while True:
        if predicate():
            return True
        now = time.monotonic()
        if progress is not None and (value := progress()) != seen:
            seen, deadline = value, min(now + timeout, limit)
        if now >= deadline:
            return False
        time.sleep(interval)


async def wait_for_async(
    predicate: Callable[[], object], *, timeout: float = DEADLINE, interval: float = 0.02
) -> bool:
    """``wait_for`` inside an event loop: the loop keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


def _runnable(pid: int) -> bool:
    """Whether a thread of ``pid`` is running or waiting for a CPU (state R)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = stat.read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        if state == "R":
            return True
    return False


def wait_process_idle(pid: int, *, timeout: float = DEADLINE, calm: int = 3) -> bool:
    """Wait until no thread of ``pid`` is runnable ``calm`` times in a row, 10 ms apart."""
    seen = 0

    def settled() -> bool:
        nonlocal seen
        seen = 0 if _runnable(pid) else seen + 1
        return seen >= calm

    return wait_for(settled, timeout=timeout, interval=0.01)


def read_lines_until(
    stream: IO[bytes], done: Callable[[str], bool], *, timeout: float = DEADLINE
) -> list[str]:
    """Lines of a child's output pipe, read until one makes ``done`` true (or EOF, or timeout).

    Reads the pipe itself: call it before anything has read ahead of the
    lines it should return (a ``readline`` of a "ready" printed first is fine).
    """
    fd = stream.fileno()
    lines: list[str] = []
    pending = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            lines.append(raw.decode(errors="replace"))
            if done(lines[-1]):
                return lines
    return lines


class LogFile:
    """A log a process writes, read whole each time; ``mark()`` so waits skip older lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        """Everything written so far."""
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> int:
        """A position: ``wait``/``count`` with ``since=`` look only at what comes after it."""
        return len(self.text())

    def count(self, text: str, *, since: int = 0) -> int:
        """How often ``text`` appears (after ``since``)."""
        return self.text()[since:].count(text)

    def wait(
        self,
        text: str,
        *,
        since: int = 0,
        count: int = 1,
        timeout: float = DEADLINE,
        alive: Callable[[], bool] | None = None,
    ) -> bool:
        """Wait until ``text`` appears ``count`` times after ``since``; False on the deadline.

        ``alive`` (the writer is still running) ends the wait early once it is
        false and the text is still missing.
        """

        def seen() -> bool:
            return self.count(text, since=since) >= count

        def settled() -> bool:
            return seen() or (alive is not None and not alive())

        return wait_for(settled, timeout=timeout) and seen()


class LoggingDaemon:
    """A daemon a test started, logging to ``logs``: read its log and wait for its lines."""

    logs: LogFile
    proc: subprocess.Popen[bytes] | None

    def log(self) -> str:
        """Everything it has logged so far (all runs)."""
        return self.logs.text()

    def mark(self) -> int:
        """A position in the log: ``wait_log(..., since=mark)`` looks only after it."""
        return self.logs.mark()

    def running(self) -> bool:
        """Whether it is still running."""
        return self.proc is not None and self.proc.poll() is None

    def wait_log(
        self, text: str, *, since: int = 0, count: int = 1, timeout: float = DEADLINE
    ) -> bool:
        """Wait until ``text`` appears in the log (``count`` times after ``since``).

        Gives up early if the daemon has exited and the text is not there.
        """
        return self.logs.wait(text, since=since, count=count, timeout=timeout, alive=self.running)
