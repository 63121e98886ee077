"""Run a command on a pseudo-terminal, as a user's terminal would (for TUI tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence

__all__ = ["run_on_pty"]


def run_on_pty(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    timeout: float = 60.0,
    until: Sequence[bytes] = (),
) -> tuple[int, float, bytes]:
    """Exit status, seconds from start to exit, and what it wrote to the terminal.

    With ``until``, the seconds are those from the start to the moment every
    one of those byte strings had appeared in the output (the first full
    frame of a TUI, say); the process still runs to its exit.
    """
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    out = bytearray()
    seen_at: float | None = None
    deadline = start + timeout
    try:
        while proc.poll() is None:
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                raise TimeoutError(f"{argv[0]} did not exit within {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    out += os.read(master, 65536)  # keep the terminal drained
                if until and seen_at is None and all(m in out for m in until):
                    seen_at = time.perf_counter() - start
        took = time.perf_counter() - start
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                out += chunk
    finally:
        os.close(master)
    if until:
        if seen_at is None:
            raise AssertionError(f"{argv[0]} never wrote {list(until)}")
        took = seen_at
    return proc.returncode, took, bytes(out)
