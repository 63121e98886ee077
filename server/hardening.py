"""The daemon's process: no core dump, ever (it holds every stanza's keys in memory).

A crash must not leave key material on disk, so the core size limit is 0,
hard as well as soft (nothing in the process can raise it again), and, when
fwknopd runs as root, the process is not dumpable (``PR_SET_DUMPABLE`` 0):
no core even where a core pattern pipes to a helper that ignores the
limit, and no ``/proc/PID/mem`` or ptrace for other users. Not dumpable is
not set for a user's own run (the client's demo): there it would also make
the process's own ``/proc/self`` root's, which subprocess relies on, and the
limit suffices. Commands fwknopd runs get their dumpable flag back at exec.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource

__all__ = ["PR_GET_DUMPABLE", "PR_SET_DUMPABLE", "no_core_dumps"]

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def no_core_dumps() -> None:
    """Core size limit 0 (soft and hard); not dumpable when root. Best effort elsewhere."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # Linux only: elsewhere it fails; the limit holds
