"""The replay cache a fleet of gateways shares, on Redis (``REPLAY_CACHE_URL redis://...``).

A packet captured at one gateway must not open another that shares its key,
so every gateway records each packet's digest in one Redis with one atomic
command, ``SET <prefix><digest> 1 NX PX <ttl>``: the first gateway to set it
gets the packet, any other (or a replay to the same one) finds it set. The
TTL is the packet's age window (until its timestamp plus
``MAX_SPA_PACKET_AGE``, as the SQLite cache keeps it) plus
``REPLAY_CACHE_SKEW`` for gateways whose clocks differ, so Redis forgets a
digest once no gateway would take its packet anyway: the cache bounds
itself. Only packets that decrypted (and so passed the HMAC, where the
stanza has one) reach a store at all (``Processor._check_replay``): junk
never costs a round trip.

This host's own SQLite cache (``REPLAY_DB_FILE``) stays beside Redis and
records every digest too: a replay to the same gateway is answered there
without a round trip (a flood of one captured packet costs Redis one
command), and it is what stands in while Redis is down.

One round trip per packet. A packet has two digests (its message's, which
the pipeline adds first, and fwknopd's digest of its text); the message's
covers every text that opens to it, so that one is the fleet's: a packet's
later digests are kept on this host only (``add`` knows them as further
calls for the packet whose first digest Redis just took). Each round trip
wakes Redis and waits for it, which is what the packet -> rule time pays.

Where the calls run. The pipeline decides on the event loop, and asks
``add`` there; a round trip on loopback or a LAN is a fraction of what
deciding the packet costs, and only valid packets make one. What could hold
the loop up is connecting (TCP, TLS, AUTH) and a Redis that does not answer.
So the loop never connects: a link thread connects, hands the loop a
connected client, checks Redis every few seconds, and reconnects. A call on
the loop has ``REPLAY_CACHE_TIMEOUT`` milliseconds (50) and no retry; when
it fails, Redis counts as down at once, and no further call is made on the
loop until the link thread has a new connection. An outage costs the packet
loop at most one timeout.

While Redis is down (what an operator of several gateways would want):

* ``REPLAY_CACHE_REQUIRED N`` (the default): packets are decided against
  this host's cache, so a replay to the same gateway is still refused; a
  packet replayed to another gateway during the outage is not. That is said
  loudly: an error when Redis goes, a warning for each packet decided
  without it (at a bounded rate) and a reminder every minute while it is
  gone, and counted (``local_only``). When Redis is back, the link thread
  merges what was recorded meanwhile (``SET NX`` again): the fleet
  converges, and a digest some other gateway also recorded during the
  outage is reported as a possible replay across gateways (``conflicts``).
* ``REPLAY_CACHE_REQUIRED Y``: packets not known locally are refused
  (``replay_unavailable``) until Redis is back. No access without the
  shared check; replays to this host are still refused as replays.

A gateway starts even when Redis cannot be reached (a Redis outage must
not keep a rebooted gateway shut), in the mode above, and joins when Redis
comes. The password comes from the URL (``redis://:PASSWORD@host``, in
fwknopd.conf, 0600) or ``REPLAY_CACHE_PASSWORD_FILE`` (0600), never a
command line; it is masked wherever the URL is shown. ``rediss://`` is TLS
(redis-py's URL options: ``?ssl_ca_certs=/path/ca.pem``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import stat
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..config import redact_url
from ..vocab import Packet, ReplayUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from . import ReplaySettings
    from .sqlite import ReplayCache

__all__ = ["SharedReplay", "connect", "open_store", "password_file_problem", "url_problem"]

log = logging.getLogger("fwknop_server.replay")

_CONNECT_TIMEOUT = 2.0  # seconds the link thread gives a connection (never the loop's)
_LINK_TIMEOUT = 2.0  # a command of the link thread (checks, merges)
_CHECK_EVERY = 5.0  # seconds between the link thread's checks while Redis is up
_REMIND_EVERY = 60.0  # seconds between reminders while Redis is down
_WARN_EVERY = 10.0  # at most one per-packet warning this often while Redis is down
_BACKOFF = (0.1, 2.0)  # reconnect: first pause, longest pause
_BACKLOG_MAX = 100_000  # digests recorded while down, to merge back (oldest go first)
_STARTUP_WAIT = 3.0  # seconds open_store waits for the first connection


def url_problem(settings: ReplaySettings) -> str | None:
    """What is wrong with a Redis ``REPLAY_CACHE_URL``, or None."""
    from redis.connection import parse_url  # noqa: PLC0415 - only a Redis setup needs it

    url = settings.url or ""
    try:
        parts: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        return f"not a Redis URL ({exc})"
    if not parts.get("host"):
        return f"{redact_url(url)} names no host"
    path = urlsplit(url).path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        return f"{redact_url(url)}: the database must be a number (redis://host:port/0)"
    if parts.get("password") and settings.password_file is not None:
        return "the URL has a password and REPLAY_CACHE_PASSWORD_FILE is set too: keep one"
    return None


def password_file_problem(settings: ReplaySettings) -> str | None:
    """Why ``REPLAY_CACHE_PASSWORD_FILE`` cannot be used (missing, or readable by others)."""
    path = settings.password_file
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a file"
    if info.st_mode & 0o077:
        return f"{path} is readable by others (mode {info.st_mode & 0o777:04o}): chmod 600 it"
    return None


def connect(settings: ReplaySettings, *, timeout: float) -> Any:
    """A client for the Redis of ``settings`` (not connected yet): one connection, no retries.

    ``timeout``: seconds a command may take. redis-py's own retries are off:
    a failed call must fail at once, not reconnect on the caller's thread.
    """
    import redis  # noqa: PLC0415 - only a Redis setup needs it
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    # redis-py logs each failure itself, with tracebacks: ours say what it means for packets
    logging.getLogger("redis").setLevel(logging.CRITICAL)
    extra: dict[str, Any] = {}
    if settings.password_file is not None:
        text = settings.password_file.read_text(encoding="utf-8")
        extra["password"] = text.splitlines()[0] if text.strip() else ""
    return redis.Redis.from_url(
        settings.url or "",
        socket_timeout=timeout,
        socket_connect_timeout=_CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        single_connection_client=True,
        client_name="fwknopd",
        **extra,
    )


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis call raises (redis-py's errors; a socket or TLS error)."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    return (RedisError, OSError)


class SharedReplay:
    """Digests in Redis for the whole fleet, and in this host's cache (``local``) as well."""

    def __init__(
        self,
        settings: ReplaySettings,
        local: ReplayCache,
        *,
        client_factory: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.local = local
        self.where = redact_url(settings.url or "")
        self.prefix = settings.prefix
        self.required = settings.required
        self.skew = settings.skew
        self.clock = clock
        self._timeout = settings.timeout_ms / 1000
        self._factory = client_factory or (lambda timeout: connect(settings, timeout=timeout))
        self._errors = redis_errors()
        self._client: Any = None  # the loop's connected client while Redis is up, else None
        self._link: Any = None  # the link thread's own client
        self._lock = threading.Lock()
        self._backlog: dict[str, float] = {}  # recorded while down: digest -> expires
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._tried = threading.Event()  # the first connection attempt is over
        self._down_since: float | None = None  # monotonic; None while up
        self._reminded = 0.0
        self._warned = 0.0
        self._last_local: Packet | None = None
        self._last_shared: Packet | None = None  # its first digest is the fleet's: the rest stay
        # counters (metrics, --status): calls that failed, packets decided without Redis
        # and refused for want of it, digests merged back, of which another gateway had too
        self.errors = 0
        self.local_only = 0
        self.merged = 0
        self.conflicts = 0
        self.refused_down = 0
        self._thread = threading.Thread(target=self._run, name="replay-link", daemon=True)

    def start(self, wait: float = _STARTUP_WAIT) -> SharedReplay:
        """Start the link thread; wait (up to ``wait`` s) for its first try to connect."""
        self._thread.start()
        self._tried.wait(wait)
        return self

    @property
    def up(self) -> bool:
        """Whether packets are checked against Redis now."""
        return self._client is not None

    # -- the store, on the event loop ---------------------------------------------

    def __len__(self) -> int:
        return len(self.local)

    def seen(self, digest: str) -> bool:
        """Whether ``digest`` is known here or (while Redis is up) to the fleet."""
        if self.local.seen(digest):
            return True
        client = self._client
        if client is None:
            return False
        try:
            return bool(client.exists(self.prefix + digest))
        except self._errors as exc:
            self._lost(client, exc)
            return False

    def add(self, digest: str, packet: Packet, expires: float) -> bool:
        """Record ``digest`` for the fleet in one ``SET NX``; False for a replay.

        ``ReplayUnavailable`` when Redis is down and ``REPLAY_CACHE_REQUIRED``.
        """
        if self.local.seen(digest):
            return False  # known here already: no round trip
        if packet is self._last_shared:  # a later digest of a packet Redis has just taken
            return self.local.add(digest, packet, expires)
        client = self._client
        if client is not None:
            try:
                fresh = client.set(
                    self.prefix + digest, b"1", nx=True, px=self._ttl_ms(expires, self.clock())
                )
            except self._errors as exc:
                self._lost(client, exc)
            else:
                self.local.add(digest, packet, expires)  # later replays are answered here
                self._last_shared = packet if fresh else None
                return bool(fresh)
        with self._lock:
            if self._client is None:
                return self._add_down(digest, packet, expires)
        return self.add(digest, packet, expires)  # Redis came back meanwhile

    def _add_down(self, digest: str, packet: Packet, expires: float) -> bool:
        """Redis is down (the lock is held): refuse, or decide on this host and say so."""
        if self.required:
            self.refused_down += 1
            raise ReplayUnavailable(f"Redis at {self.where} cannot be reached")
        if not self.local.add(digest, packet, expires):
            return False
        if packet is not self._last_local:  # a packet's digests come one after the other
            self._last_local = packet
            self.local_only += 1
        if len(self._backlog) >= _BACKLOG_MAX:
            self._backlog.pop(next(iter(self._backlog)))
        self._backlog[digest] = expires
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning(
                "replay cache: packet from %s checked against this host's cache only: "
                "Redis at %s is unreachable (%d so far)",
                packet.src, self.where, self.local_only,
            )  # fmt: skip
        return True

    def prune(self, now: float) -> int:
        """Forget local entries (and unmerged ones) that can no longer be replayed."""
        with self._lock:
            for digest in [d for d, until in self._backlog.items() if until < now]:
                del self._backlog[digest]
        return self.local.prune(now)

    def close(self) -> None:
        """Stop the link thread, drop the connections, close the local cache."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(_LINK_TIMEOUT + _CONNECT_TIMEOUT)
        for client in (self._client, self._link):
            if client is not None:
                with contextlib.suppress(*self._errors):
                    client.close()
        self._client = self._link = None
        if self._backlog:
            log.warning(
                "replay cache: %d digest(s) recorded while Redis was down were never shared "
                "(this host's cache keeps them)", len(self._backlog),
            )  # fmt: skip
        self.local.close()

    def stats(self) -> dict[str, float]:
        """Counters and state, for metrics and ``--status``."""
        return {
            "up": float(self.up),
            "errors": self.errors,
            "local_only": self.local_only,
            "refused_down": self.refused_down,
            "merged": self.merged,
            "conflicts": self.conflicts,
            "backlog": len(self._backlog),
        }

    def _ttl_ms(self, expires: float, now: float) -> int | None:
        """Milliseconds Redis keeps a digest: its age window left, plus the skew allowed."""
        if math.isinf(expires):
            return None  # packet aging off: kept for ever, as the SQLite cache does
        return max(1, int((expires - now + self.skew) * 1000))

    def _lost(self, client: Any, exc: BaseException) -> None:
        """A call on ``client`` failed: Redis is down from now on; the link thread reconnects."""
        with self._lock:
            self.errors += 1
            if self._client is not client:
                return  # already known
            self._client = None
            self._down_since = self._reminded = time.monotonic()
        log.error(
            "replay cache: Redis at %s failed (%s); %s until it is back",
            self.where, _why(exc),
            "refusing packets" if self.required else "checking replays on this host only",
        )  # fmt: skip
        self._wake.set()

    # -- the link thread -----------------------------------------------------------

    def _run(self) -> None:
        pause = _BACKOFF[0]
        while not self._stop.is_set():
            if self._client is None:
                try:
                    self._reconnect()
                except self._errors as exc:
                    self._still_down(exc)
                    self._tried.set()
                    self._stop.wait(pause)
                    pause = min(pause * 2, _BACKOFF[1])
                    continue
                self._tried.set()
                pause = _BACKOFF[0]
                continue
            self._wake.wait(_CHECK_EVERY)
            self._wake.clear()
            client = self._client
            if self._stop.is_set() or client is None:
                continue
            try:
                self._link.ping()
            except self._errors as exc:
                self._drop_link()
                self._lost(client, exc)

    def _reconnect(self) -> None:
        """Connect both clients, merge what was recorded meanwhile, then let the loop use Redis."""
        if self._link is None:
            self._link = self._factory(_LINK_TIMEOUT)
        try:
            self._link.ping()
            client = self._factory(self._timeout)
            client.ping()  # connected here, so the loop never connects
        except self._errors:
            self._drop_link()
            raise
        with self._lock:
            early = dict(self._backlog)
        self._merge(early)
        with self._lock:
            late = {d: t for d, t in self._backlog.items() if d not in early}
            self._merge(late)  # what came while merging: few, if any
            self._backlog.clear()
            self._client = client
            down = self._down_since
            self._down_since = None
        if down is None:
            log.info("replay cache: shared on Redis at %s", self.where)
        else:
            log.warning(
                "replay cache: Redis at %s is back after %.0f s; %d digest(s) recorded meanwhile "
                "merged", self.where, time.monotonic() - down, len(early) + len(late),
            )  # fmt: skip

    def _merge(self, digests: dict[str, float]) -> None:
        """``SET NX`` each digest (one pipeline); a digest already there was seen elsewhere too."""
        if not digests:
            return
        now = self.clock()
        live = [(d, t) for d, t in digests.items() if t >= now]
        pipe = self._link.pipeline(transaction=False)
        for digest, expires in live:
            pipe.set(self.prefix + digest, b"1", nx=True, px=self._ttl_ms(expires, now))
        results = pipe.execute()
        clashes = sum(1 for fresh in results if not fresh)
        self.merged += len(live)
        self.conflicts += clashes
        if clashes:
            log.warning(
                "replay cache: %d packet(s) this host took while Redis was down were taken by "
                "another gateway too (a replay across gateways during the outage?)", clashes,
            )  # fmt: skip

    def _still_down(self, exc: BaseException) -> None:
        """A reconnect failed: say so when the outage begins, and remind every minute."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = self._reminded = now
            log.error(
                "replay cache: cannot reach Redis at %s (%s); %s until it is back",
                self.where, _why(exc),
                "refusing packets" if self.required else "checking replays on this host only",
            )  # fmt: skip
        elif now - self._reminded >= _REMIND_EVERY:
            self._reminded = now
            log.error(
                "replay cache: Redis at %s still unreachable after %.0f s (%s); %d packet(s) "
                "decided on this host only, %d refused", self.where, now - self._down_since,
                _why(exc), self.local_only, self.refused_down,
            )  # fmt: skip

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(*self._errors):
                link.close()


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def open_store(settings: ReplaySettings, local: ReplayCache) -> SharedReplay:
    """The shared store of ``settings``, with ``local`` beside it; connecting in the background."""
    return SharedReplay(settings, local).start()
