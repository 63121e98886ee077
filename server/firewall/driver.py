"""The firewall on the event loop: where each call runs, and the timers that close grants.

An in-process backend (libnftables, netlink) is called on the loop, so the
rule is in place before the packet is even logged; one that runs commands
(iptables, ...) on a thread of its own, so a slow command never holds up
the packet path, its calls in the order they were made. Expiry runs on a
timer set for the moment the next grant is due; the periodic housekeeping
(``RULES_CHECK_THRESHOLD``) where the backend's calls run. A grant that
fails is logged and counted (``firewall_failed``); the backend has taken
back whatever part of it was made (every backend makes a grant whole or
not at all).

Closing what is due never stops for good: if it fails (a firewall command
that fails, a bug), it is logged and tried again ``EXPIRY_RETRY`` seconds
later, until it works; a failed housekeeping is logged, and the next one
comes on time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

from ..vocab import Grant
from .base import Firewall, FirewallError, Opening

__all__ = ["FirewallDriver"]

log = logging.getLogger("fwknop_server")
EXPIRY_RETRY = 5.0  # seconds before closing what is due is tried again after a failure


class FirewallDriver:
    """Runs ``firewall``'s calls where they belong and closes its grants on time."""

    def __init__(
        self,
        firewall: Firewall,
        clock: Callable[[], float] = time.time,
        *,
        count: Callable[[str], None] = lambda _key: None,
    ) -> None:
        self.firewall = firewall
        self.clock = clock
        self._count = count  # the daemon's counters (a failed grant is ``firewall_failed``)
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="firewall")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at: float | None = None
        # told how long each grant took to open, from the packet's read (metrics); called
        # where the backend's calls run (the loop, or the firewall thread)
        self.on_opened: Callable[[Grant, float], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set timers on ``loop`` (the daemon's event loop)."""
        self._loop = loop

    async def call(self, fn: Callable[..., Any], *args: object) -> Any:
        """Run a firewall call where the backend's calls run: here, or on the firewall thread."""
        if self.firewall.in_process:
            return fn(*args)
        assert self._loop is not None  # noqa: S101 - start() comes first
        return await self._loop.run_in_executor(self._thread, fn, *args)

    async def drain(self) -> None:
        """Until every call made so far is done."""
        await self.call(lambda: None)

    def grant(self, grant: Grant, now: float, *, since: float | None = None) -> bool:
        """Open ``grant``; False if an in-process backend failed at once (it says why).

        ``since``: when its packet was read (``time.monotonic``), for ``on_opened``.
        """
        decided = time.monotonic()
        started = decided if since is None else since
        if not self.firewall.in_process:
            future = self._thread.submit(self._grant, grant, now, decided, started)
            future.add_done_callback(lambda done: self._granted(grant, done))
            return True
        try:
            self.firewall.grant(grant, now)
        except FirewallError as exc:  # a failed grant must not stop capture (a bug is the
            self._failed(grant, exc)  # dispatcher's: counted at the packet boundary)
            return False
        self._opened(grant, decided, started)
        self.schedule_expiry()
        return True

    def _grant(self, grant: Grant, now: float, decided: float, started: float) -> list[Opening]:
        """On the firewall thread: open, and say how long it took from the decision."""
        openings = self.firewall.grant(grant, now)
        self._opened(grant, decided, started)
        return openings

    def _opened(self, grant: Grant, decided: float, started: float) -> None:
        opened = time.monotonic()
        log.debug("firewall: %s opened %.2f ms after the decision", grant.source,
                  (opened - decided) * 1000)  # fmt: skip
        if self.on_opened is not None:
            self.on_opened(grant, opened - started)

    def _failed(self, grant: Grant, exc: BaseException) -> None:
        """A grant that could not be made: the backend took back what it had made of it."""
        ports = ",".join(f"{proto}/{port}" for proto, port in grant.ports)
        log.error("firewall: nothing opened for %s %s: %s", grant.source, ports, exc)
        self._count("firewall_failed")

    def _granted(self, grant: Grant, future: concurrent.futures.Future[Any]) -> None:
        """On the firewall thread: a grant is done; on the loop, count it if it failed."""
        exc = future.exception()
        if exc is None:
            self._done(future)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._failed, grant, exc)

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        """A call on the firewall thread is done: say if it failed, set the expiry timer."""
        exc = future.exception()
        if exc is not None:
            log.error("firewall: %s", exc)
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.schedule_expiry)

    # -- timers --------------------------------------------------------------------

    def schedule_expiry(self) -> None:
        """Set the timer for the next grant due, if it is sooner than the one set."""
        due = self.firewall.next_expiry()
        if due is not None:
            self._expire_at(due)

    def _expire_at(self, due: float) -> None:
        """Set the expiry timer for ``due``, unless it is set for sooner."""
        if self._expiry_at is not None and self._expiry_at <= due:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        assert self._loop is not None  # noqa: S101 - only called while running
        self._expiry_at = due
        self._expiry = self._loop.call_later(max(0.0, due - self.clock()), self._expire)

    def _expire(self) -> None:
        self._expiry = None
        self._expiry_at = None
        if self.firewall.in_process:
            try:
                self.firewall.expire(self.clock())
            except Exception as exc:  # whatever it is, closing is tried again
                self._expire_failed(exc)
                return
            self.schedule_expiry()
            return
        self._thread.submit(self.firewall.expire, self.clock()).add_done_callback(self._expired)

    def _expired(self, future: concurrent.futures.Future[Any]) -> None:
        """On the firewall thread: closing what was due is done; back on the loop."""
        if self._loop is None:
            return
        exc = future.exception()
        if exc is not None:
            self._loop.call_soon_threadsafe(self._expire_failed, exc)
        else:
            self._loop.call_soon_threadsafe(self.schedule_expiry)

    def _expire_failed(self, exc: BaseException) -> None:
        """Closing what is due failed: say so, and try again soon (grants must not outlive it)."""
        log.error("firewall: closing expired grants failed (%s); trying again in %.0f s",
                  _failure(exc), EXPIRY_RETRY)  # fmt: skip
        self._expire_at(self.clock() + EXPIRY_RETRY)

    def housekeeping(self) -> None:
        """The backend's periodic care (``RULES_CHECK_THRESHOLD``), where its calls run."""
        if self.firewall.in_process:
            try:
                self.firewall.housekeeping(self.clock())
            except Exception as exc:  # the next round comes on time
                log.error("firewall: housekeeping failed (%s)", _failure(exc))
            return
        self._thread.submit(self.firewall.housekeeping, self.clock()).add_done_callback(
            self._housekept
        )

    def _housekept(self, future: concurrent.futures.Future[Any]) -> None:
        """On the firewall thread: a housekeeping round is done; say if it failed."""
        exc = future.exception()
        if exc is not None:
            log.error("firewall: housekeeping failed (%s)", _failure(exc))

    async def stop(self, *, close: bool) -> None:
        """Cancel the timer; ``close``: the backend's stop (FLUSH_*_AT_EXIT); end the thread."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if close:
            try:
                await self.call(self.firewall.stop)
            except FirewallError as exc:
                log.error("firewall at exit: %s", exc)
        self._thread.shutdown(wait=True)


def _failure(exc: BaseException) -> str:
    """A firewall error's own words; for anything else its type too (no traceback)."""
    return str(exc) if isinstance(exc, FirewallError) else f"{type(exc).__name__}: {exc}"
