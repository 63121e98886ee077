"""What a running fwknopd says about itself, for scripts (``fwknopd --status --json``) and metrics.

``snapshot`` gathers the daemon's counters and state into one JSON-able
dict, on the event loop (where they change, so it is consistent). The CLI
reaches the running daemon through a unix socket in the run directory,
``$FWKNOP_RUN_DIR/fwknopd.sock``, mode 0600 (the directory is 0700): the
daemon writes one snapshot to whoever connects and closes, and reads
nothing. We chose a socket over a status file rewritten every few seconds:
the answer is current (a script checking a knock it just sent sees it),
nothing is written while nobody asks, and a daemon that is alive but stuck
shows as one that does not answer within the CLI's timeout, which a file
of old figures would hide. Only root (the run directory's owner) can
connect; there is no network endpoint (``METRICS_LISTEN`` is the opt-in one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import redact_url
from .vocab import Reason

if TYPE_CHECKING:
    from .daemon import Daemon
    from .ratelog import RateLimitedLog

__all__ = ["SOCKET_NAME", "query", "serve", "snapshot", "socket_path"]

SOCKET_NAME = "fwknopd.sock"
_REASONS = frozenset(reason.key for reason in Reason)
_KERNEL_DROPPED = "kernel_dropped"  # among the counters SIGUSR1 logs


def socket_path(run_dir: Path) -> Path:
    """Where the daemon of this run directory answers."""
    return run_dir / SOCKET_NAME


def capture_drops(source: object, refusals: RateLimitedLog) -> int:
    """What the kernel dropped before capture read it, in all: a counter that only grows.

    The kernel's count resets when it is read, so every reader (a scrape,
    ``--status``, SIGUSR1) goes through here, and what it read is added to
    ``kernel_dropped`` among the counters.
    """
    drops = getattr(source, "drops", None)
    if drops is not None and (dropped := drops()):
        refusals.count(_KERNEL_DROPPED, dropped)
    return refusals.counts.get(_KERNEL_DROPPED, 0)


def snapshot(daemon: Daemon, *, started: float) -> dict[str, Any]:
    """The daemon's counters and state now (on the event loop)."""
    dispatch, firewall = daemon.dispatch, daemon.firewall
    dropped = capture_drops(daemon.source, dispatch.refusals)
    counts = dict(dispatch.refusals.counts)
    source = daemon.source
    replay = daemon.replay
    replay_info: dict[str, Any] = {"store": daemon.settings.replay.scheme}
    if replay is None:
        replay_info["store"] = "off"
    else:
        replay_info["entries"] = len(replay)
        if daemon.settings.replay.url:
            replay_info["url"] = redact_url(daemon.settings.replay.url)
        stats = getattr(replay, "stats", None)
        if stats is not None:
            replay_info.update(stats())
    sync = daemon.sync
    return {
        "pid": os.getpid(),
        "version": __version__,
        "started": int(started),
        "uptime": round(time.time() - started, 1),
        "capture": source.description if source is not None else None,
        "firewall": firewall.name,
        "packets": dispatch.packets,
        "refusals": {k: v for k, v in counts.items() if k in _REASONS},
        "events": {k: v for k, v in counts.items() if k not in _REASONS and k != _KERNEL_DROPPED},
        "grants": {
            "active": len(firewall.open) + len(firewall.nat_open),
            "made": [
                {"stanza": stanza, "origin": origin, "backend": firewall.name, "count": n}
                for (stanza, origin), n in sorted(dispatch.grants.items())
            ],
        },
        "capture_drops": dropped,
        "replay": replay_info,
        "grant_sync": None
        if sync is None
        else {"group": sync.settings.group, "member": sync.member, **sync.stats()},
        "knocks": dict(dispatch.knocks),
    }


async def serve(path: Path, answer: Callable[[], dict[str, Any]]) -> asyncio.Server:
    """Answer each connection to ``path`` with ``answer()`` as JSON (mode 0600)."""

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(answer()).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by a daemon that was killed
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(one, path)
    finally:
        os.umask(old)
    path.chmod(0o600)
    return server


def query(path: Path, timeout: float = 2.0) -> dict[str, Any]:
    """Ask the daemon at ``path``; ``OSError`` (``TimeoutError``) if it does not answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data: dict[str, Any] = json.loads(b"".join(chunks))
    return data
