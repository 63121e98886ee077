"""Command messages and command cycles: what fwknopd runs, and how (server-config.md §3.5).

The one place that runs anything, ``CommandExecutor`` (an edge of the server:
threads and processes); what a stanza allows and the argv a command becomes
are decided in ``commands.py``, without I/O.

As the real fwknopd 2.6.10 does it (each point checked against it in a
namespace):

* The text is split on runs of whitespace into argv: no shell, no quoting,
  no globbing (``sh -c 'a b'`` is four words; an administrator who wants a
  shell writes a script, or a cycle command that is a shell's own argv).
  A command of more than 28 words is not run at all (fwknopd's argument
  vector has 30 slots, two of them its own); the spec's "30" is those slots.
* An empty environment, the program looked up on the C library's default
  path (``/bin:/usr/bin``, what ``execvpe`` uses without ``PATH``), working
  directory ``/``, standard input from /dev/null.
* As the daemon's user (root) unless ``CMD_EXEC_USER``: then the group of
  ``CMD_EXEC_GROUP`` (else the user's primary group), no supplementary
  groups, and the user. ``ENABLE_CMD_SUDO_EXEC`` prefixes the argv with
  ``SUDO_EXE [-u USER] [-g GROUP]`` (each left out when it is ``root``).
* Cycle commands (``CMD_CYCLE_OPEN``, ``CMD_CYCLE_CLOSE``) run as the daemon's
  user and without sudo, as fwknopd's do.

Where we differ, on purpose:

* Nothing runs on the event loop: each command runs on a worker thread with
  a timeout (``CMD_EXEC_TIMEOUT``, 30 s when unset; fwknopd 2.6.10 accepts the
  setting but waits for ever, every other packet waiting behind the
  command). When the time is up the command's process group is killed.
* Every command's exit status is logged, the cycle commands' too.
* ``CMD_SUDO_EXEC_GROUP`` gives ``-g`` (fwknopd 2.6.10 only adds it when
  ``CMD_EXEC_GROUP`` is set as well), ``CMD_EXEC_GROUP`` may name a group
  (fwknopd looks it up as a *user* and takes that user's primary group; a
  user name still works here) and applies without ``CMD_EXEC_USER`` too.
* A close command still pending at exit runs then (fwknopd drops it, leaving
  whatever the open command did in place), and in ``--test`` mode the close
  command runs like the open one (fwknopd runs only the open command).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .commands import split_words
from .config import ServerConfig
from .vocab import RunAs, RunCommand, RunCycle

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_TIMEOUT",
    "CommandExecutor",
    "Outcome",
    "command_timeout",
    "run_argv",
]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/bin:/usr/bin"  # the C library's path when the environment has none
DEFAULT_TIMEOUT = 30.0
_KEEP_OUTPUT = 512  # bytes of a command's output kept for the debug log
_MAX_QUEUED = 64  # commands waiting for a worker; more are refused, not queued
_POLL = 0.5  # seconds between checks whether a command that holds its output open has exited


def command_timeout(config: ServerConfig) -> float:
    """Seconds a command may run: ``CMD_EXEC_TIMEOUT``, else our default."""
    timeout = config.optional_number("CMD_EXEC_TIMEOUT")
    return DEFAULT_TIMEOUT if timeout is None else float(timeout)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a command ended: its exit status, or why it has none."""

    status: int | None = None  # exit status when it exited
    signal: int | None = None  # the signal that ended it
    timed_out: bool = False
    error: str | None = None  # why it could not be started
    output: bytes = b""  # the first bytes of what it wrote

    def describe(self) -> str:
        """``returned 0, pid_status: S`` (fwknopd's wording), or what happened instead."""
        if self.error is not None:
            return f"could not be run: {self.error}"
        if self.timed_out:
            return "timed out and was killed"
        if self.signal is not None:
            return f"was killed by signal {self.signal}"
        return f"returned 0, pid_status: {self.status}"


Spawn = Callable[[Sequence[str], "RunAs | None", float], Outcome]


def run_argv(argv: Sequence[str], run_as: RunAs | None, timeout: float) -> Outcome:
    """Run ``argv`` (blocking: call it on a worker thread) and wait at most ``timeout`` seconds."""
    program = argv[0]
    executable = program if "/" in program else shutil.which(program, path=DEFAULT_PATH)
    if executable is None:
        return Outcome(error=f"{program}: not found in {DEFAULT_PATH}")
    uid = run_as.uid if run_as is not None else None
    gid = run_as.gid if run_as is not None else None
    try:
        proc = subprocess.Popen(
            list(argv),
            executable=executable,
            env={},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,  # its own process group: killed whole on timeout
            user=uid,
            group=gid,
            extra_groups=[] if gid is not None else None,  # only the group given
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return Outcome(error=str(exc))
    deadline = time.monotonic() + timeout
    kept = bytearray()
    assert proc.stdout is not None  # noqa: S101 - stdout=PIPE
    timed_out = False
    with proc.stdout, selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not sel.select(min(left, _POLL)):
                if proc.poll() is not None:
                    break  # it exited; a child of its own holds the output open
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            kept += chunk[: max(0, _KEEP_OUTPUT - len(kept))]
    if not timed_out:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return Outcome(timed_out=True, output=bytes(kept))
    code = proc.returncode
    if code < 0:
        return Outcome(signal=-code, output=bytes(kept))
    return Outcome(status=code, output=bytes(kept))


@dataclass(slots=True)
class _Close:
    """A close command waiting: for its open command to finish, then for its time."""

    cycle: RunCycle
    due: float  # on the executor's clock
    handle: asyncio.TimerHandle | None = None
    opened: bool = False


class CommandExecutor:
    """Runs command messages and cycles on worker threads, never on the caller's thread.

    ``run`` and ``cycle`` are called on the event loop and return at once.
    Close commands are timed on the loop given to ``start`` and run on the
    workers like everything else; ``shutdown`` runs the ones still pending.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        workers: int = 2,
        spawn: Spawn = run_argv,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self._spawn = spawn
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="command")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._queued = 0
        self._closes: dict[int, _Close] = {}
        self._next_id = 0
        self._stopping = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time close commands on ``loop`` (the daemon's event loop)."""
        self._loop = loop

    # -- on the event loop ---------------------------------------------------------

    def run(self, command: RunCommand) -> concurrent.futures.Future[Outcome] | None:
        """Log and queue a command message; None when it is not run (test mode, too busy)."""
        where = f"[{command.packet_src}] (stanza #{command.stanza})"
        if command.test_only:
            log.warning("%s --test mode enabled, skipping command execution.", where)
            return None
        log.info("%s Processing SPA Command message: command='%s'.", where, command.command)
        return self._submit(where, "CMD_EXEC", command.argv, command.run_as, self._running(command))

    def cycle(self, cycle: RunCycle) -> concurrent.futures.Future[Outcome] | None:
        """Run a cycle's open command now, and its close command ``close_after`` seconds on."""
        where = f"[{cycle.packet_src}] (stanza #{cycle.stanza})"
        future = self._submit(
            where,
            "CMD_CYCLE_OPEN",
            split_words(cycle.open_text),
            None,
            f"Running CMD_CYCLE_OPEN command: {cycle.open_text}",
        )
        if future is None or cycle.close_text is None:
            return future
        close = _Close(cycle, self._clock() + cycle.close_after)
        with self._lock:
            key = self._next_id
            self._next_id += 1
            self._closes[key] = close
        log.info(
            "%s Running CMD_CYCLE_CLOSE command in %d seconds: %s",
            where, cycle.close_after, cycle.close_text,
        )  # fmt: skip
        # timed once the open command is done: a close never overtakes its open
        future.add_done_callback(lambda _done: self._after_open(key))
        return future

    # -- anywhere ------------------------------------------------------------------

    def pending_closes(self) -> int:
        """Close commands waiting for their time."""
        with self._lock:
            return len(self._closes)

    def shutdown(self) -> None:
        """Run every pending close command now, wait for all commands, stop the workers."""
        with self._lock:
            self._stopping = True
            # the others run as soon as their open command is done (see _after_open)
            ready = [key for key, close in self._closes.items() if close.opened]
        for key in ready:
            self._close_now(key, at_exit=True)
        self._pool.shutdown(wait=True)

    # -- internals -----------------------------------------------------------------

    @staticmethod
    def _running(command: RunCommand) -> str:
        text = " ".join(command.argv)
        if command.run_as is None:
            return f"Running command '{text}'"
        return f"Running command '{text}' setuid/setgid user/group to {command.run_as.describe()}"

    def _submit(
        self,
        where: str,
        kind: str,
        argv: Sequence[str],
        run_as: RunAs | None,
        running: str,
    ) -> concurrent.futures.Future[Outcome] | None:
        with self._lock:
            if self._queued >= _MAX_QUEUED:
                log.error("%s %s: %d commands are waiting already; not run", where, kind,
                          self._queued)  # fmt: skip
                return None
            self._queued += 1
        try:
            return self._pool.submit(self._queued_run, where, kind, tuple(argv), run_as, running)
        except RuntimeError:  # the pool was shut down meanwhile
            with self._lock:
                self._queued -= 1
            log.error("%s %s: shutting down; not run", where, kind)
            return None

    def _queued_run(
        self, where: str, kind: str, argv: tuple[str, ...], run_as: RunAs | None, running: str
    ) -> Outcome:
        """On a worker: ``_execute`` a command ``_submit`` counted, and count it done."""
        try:
            return self._execute(where, kind, argv, run_as, running)
        finally:
            with self._lock:
                self._queued -= 1

    def _execute(
        self, where: str, kind: str, argv: tuple[str, ...], run_as: RunAs | None, running: str
    ) -> Outcome:
        """Run one command, log how it ended."""
        log.info("%s %s", where, running)
        if not argv:
            outcome = Outcome(error="empty command")
        else:
            try:
                outcome = self._spawn(argv, run_as, self.timeout)
            except Exception as exc:  # a failure to run is logged, never raised on
                outcome = Outcome(error=f"{type(exc).__name__}: {exc}")
        if outcome.timed_out:
            log.error("%s %s: command timed out after %g s and was killed", where, kind,
                      self.timeout)  # fmt: skip
        elif outcome.error is not None:
            log.error("%s %s: command could not be run: %s", where, kind, outcome.error)
        elif outcome.status == 0:
            log.info("%s %s: command %s", where, kind, outcome.describe())
        else:
            log.warning("%s %s: command %s", where, kind, outcome.describe())
        if outcome.output:
            log.debug("%s %s: output: %r", where, kind, outcome.output)
        return outcome

    def _after_open(self, key: int) -> None:
        """The open command is done (on its worker): time the close on the loop."""
        loop = self._loop
        with self._lock:
            close = self._closes.get(key)
            if close is None:
                return
            close.opened = True
            stopping = self._stopping
        if stopping or loop is None or loop.is_closed():
            self._close_now(key, at_exit=stopping)
            return
        try:
            loop.call_soon_threadsafe(self._arm, key)
        except RuntimeError:  # the loop closed meanwhile
            self._close_now(key, at_exit=True)

    def _arm(self, key: int) -> None:
        """On the loop: set the close command's timer."""
        assert self._loop is not None  # noqa: S101 - only scheduled through the loop
        with self._lock:
            close = self._closes.get(key)
            if close is None or self._stopping:
                return
            delay = max(0.0, close.due - self._clock())
            close.handle = self._loop.call_later(delay, self._close_now, key)

    def _close_now(self, key: int, *, at_exit: bool = False) -> None:
        """Run a cycle's close command now (its timer expired, or we are stopping)."""
        with self._lock:
            close = self._closes.pop(key, None)
        if close is None:
            return
        if close.handle is not None:
            close.handle.cancel()
        cycle = close.cycle
        assert cycle.close_text is not None  # noqa: S101 - only cycles with a close are kept
        where = f"[{cycle.source}] (stanza #{cycle.stanza})"
        why = "Exiting" if at_exit else "Timer expired"
        argv = split_words(cycle.close_text)
        running = f"{why}, running CMD_CYCLE_CLOSE command: {cycle.close_text}"
        if at_exit:
            # the workers may all be busy or gone: run it here, we are waiting anyway
            self._execute(where, "CMD_CYCLE_CLOSE", argv, None, running)
            return
        self._submit(where, "CMD_CYCLE_CLOSE", argv, None, running)
