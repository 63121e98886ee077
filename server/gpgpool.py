"""GnuPG decryption off the packet path: a few workers and a bounded queue.

Decrypting a GnuPG packet runs ``gpg``, a process of its own, for several
milliseconds. A stanza without an HMAC key has to decrypt every GnuPG-sized
packet to judge it, junk included, so on the event loop a flood of such
junk would hold up every other packet (fwknopd has this weakness: about a
hundred such packets a second stall it). Here the pipeline hands the
decryption back as a ``Deferred`` decision, and the daemon puts its job in
this pool:

* ``WORKERS`` threads each decrypt one packet at a time and deliver the
  outcome to the event loop, where the pipeline resumes (replay cache and
  policy stay on the loop, with everything else they touch);
* at most ``QUEUE`` jobs wait; a job that finds the queue full is refused
  at once (``Reason.GPG_BUSY``), counted and logged at the refusal rate, like
  any other refusal of a flood;
* the workers run at a lower CPU priority (nice), and so do the ``gpg``
  processes they start (a child takes its thread's niceness), so under such
  a flood the packet path, and with it every Rijndael knock, keeps the CPU
  it needs.

A stanza with an HMAC key turns GnuPG-sized junk away before any of this
(the flood screen); only packets that carry its HMAC ever reach the pool.
``settle`` runs a decision's jobs in the caller's thread instead, for what
has no event loop (tests, tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable

from fwknop_core import GpgDecryption, InvalidPacket, open_packet
from fwknop_core.gpg import GnupgBackend, GpgBackend

from .vocab import Decision, Deferred, GpgJob, GpgOutcome

__all__ = ["QUEUE", "WORKERS", "GpgPool", "open_gpg", "settle"]

log = logging.getLogger(__name__)

WORKERS = 2
QUEUE = 16
NICE = 10  # added to the workers' (and their gpg processes') niceness
Decrypt = Callable[[GpgJob], GpgOutcome]
Done = Callable[[Deferred, "GpgOutcome | Exception"], None]

_backends = threading.local()  # per thread: (GnuPG home, gpg) -> backend


def _backend(home_dir: str, exe: str, decrypt_id: str | None) -> GpgBackend:
    """This thread's backend for a GnuPG home, binary and GPG_DECRYPT_ID (made once)."""
    cache: dict[tuple[str, str, str | None], GpgBackend] = _backends.__dict__.setdefault(
        "cache", {}
    )
    backend = cache.get((home_dir, exe, decrypt_id))
    if backend is None:  # it runs ``gpg --version``: once per thread
        backend = cache[home_dir, exe, decrypt_id] = GnupgBackend(
            home_dir, exe, decrypt_id=decrypt_id
        )
    return backend


def open_gpg(job: GpgJob) -> GpgOutcome:
    """Decrypt (and verify) ``job``'s packet; the opened packet or why not (blocking: gpg runs)."""
    key = GpgDecryption(_backend(job.home_dir, job.exe, job.decrypt_id), job.passphrase)
    try:
        # an IPv6 allow IP (our extension) is opened here and judged by policy later
        return open_packet(job.data, key, verified=job.verified, allow_ipv6=True)
    except InvalidPacket as failure:
        return failure


def settle(decision: Decision, decrypt: Decrypt = open_gpg) -> Decision:
    """``decision`` with the GnuPG jobs it waits for run here, now (blocking)."""
    while isinstance(decision, Deferred):
        decision = decision.resume(decrypt(decision.job))
    return decision


class GpgPool:
    """``workers`` threads decrypting GnuPG packets; at most ``size`` jobs waiting."""

    def __init__(
        self,
        *,
        workers: int = WORKERS,
        size: int = QUEUE,
        decrypt: Decrypt = open_gpg,
        nice: int = NICE,
    ) -> None:
        self._decrypt = decrypt
        self._nice = nice
        self._jobs: queue.Queue[tuple[Deferred, Done] | None] = queue.Queue(size)
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pending = 0  # submitted, outcome not delivered yet (on the loop's side)
        self._idle: asyncio.Event | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver outcomes on ``loop``; the workers start with the first job."""
        self._loop = loop
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, deferred: Deferred, done: Done) -> bool:
        """Queue ``deferred``'s job; ``done(deferred, outcome)`` runs on the loop. False if full."""
        if not self._threads:
            self._spawn()
        try:
            self._jobs.put_nowait((deferred, done))
        except queue.Full:
            return False
        self.pending += 1
        if self._idle is not None:
            self._idle.clear()
        return True

    async def drained(self) -> None:
        """Until every job submitted so far has delivered its outcome."""
        if self._idle is not None:
            await self._idle.wait()

    def shutdown(self) -> None:
        """Stop the workers once the job each is on is done; jobs still waiting are dropped."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._jobs.get_nowait()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def _spawn(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"gpg-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        """A worker: decrypt one job after another, each outcome to the loop."""
        with contextlib.suppress(OSError):  # not allowed here: run at the normal priority
            # Linux keeps a niceness per thread, and a child process starts with its thread's
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        while (item := self._jobs.get()) is not None:
            deferred, done = item
            outcome: GpgOutcome | Exception
            try:
                outcome = self._decrypt(deferred.job)
            except Exception as exc:  # handed over: the daemon logs it as an internal error
                outcome = exc
            loop = self._loop
            if loop is None or loop.is_closed():
                continue
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._deliver, deferred, done, outcome)

    def _deliver(self, deferred: Deferred, done: Done, outcome: GpgOutcome | Exception) -> None:
        """On the loop: hand the outcome over, and note when nothing is pending any more."""
        self.pending -= 1
        if not self.pending and self._idle is not None:
            self._idle.set()
        done(deferred, outcome)
