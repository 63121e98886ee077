"""Grants shared across an HA group (``GRANT_SYNC_GROUP``), on a Redis stream.

Two gateways behind one address (keepalived/VRRP, anycast) must both hold a
client's grant, or a failover closes the client's session. Each grant this
gateway makes is appended to the group's stream, ``<prefix>grants:<group>``
on the Redis of ``REPLAY_CACHE_URL``, and every other member applies it to
its own firewall with the same source, ports and expiry (an absolute time:
the members' clocks are kept by NTP, as the replay cache's TTLs assume).

* A stream, not pub/sub: a member that starts later (or was cut off from
  Redis for a while) reads what it missed, and applies the grants still
  valid. The stream keeps the last ``_KEEP`` entries (approximate trimming).
* A member never re-publishes what it received: received grants go to the
  firewall directly, never through the path that publishes; its own entries
  (by member name: host and PID) are skipped as it reads them back.
* Revocation and expiry stay per host: each member's firewall closes the
  grant when it expires (the kernel does, with nftables), as for its own.
* NAT grants stay on the gateway that made them (the NAT target is that
  gateway's decision); plain access grants are shared.
* Nothing here runs on the event loop: a writer thread appends (grants made
  while Redis is down wait, and go when it is back, if still valid), a
  reader thread blocks on the stream and hands each grant to the loop.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fwknop_core import MessageType

from .config import ServerConfig
from .replay import ReplaySettings
from .replay.redis import connect, redis_errors
from .vocab import Grant

__all__ = ["GrantSync", "SyncSettings", "decode", "encode"]

log = logging.getLogger("fwknop_server.grantsync")

_KEEP = 10_000  # entries the stream keeps: more than a group's grants still open
_BLOCK_MS = 1000  # how long one read waits for new entries
_READ_TIMEOUT = 5.0  # a read's socket timeout: longer than it blocks
_WRITE_TIMEOUT = 2.0
_PENDING_MAX = 1000  # grants waiting for Redis to come back
_BACKOFF = (0.1, 2.0)
_REMIND_EVERY = 60.0
_VERSION = "1"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """What fwknopd.conf says about sharing grants: the group, and the Redis it is on."""

    group: str
    replay: ReplaySettings  # the Redis (URL, password, prefix) of the replay cache

    @property
    def stream(self) -> str:
        """The group's stream key."""
        return f"{self.replay.prefix}grants:{self.group}"

    @classmethod
    def from_config(cls, config: ServerConfig, replay: ReplaySettings) -> SyncSettings | None:
        """The group of ``config`` (None: grants stay on this host)."""
        group = config.text("GRANT_SYNC_GROUP")
        return cls(group, replay) if group else None


def encode(grant: Grant) -> str:
    """A grant as the stream carries it (JSON)."""
    return json.dumps(
        {
            "source": str(grant.source),
            "destination": None if grant.destination is None else str(grant.destination),
            "ports": [[proto, port] for proto, port in grant.ports],
            "expires": grant.expires,
            "timeout": grant.timeout,
            "stanza": grant.stanza,
            "username": grant.username,
            "type": int(grant.message_type),
        },
        separators=(",", ":"),
    )


def decode(text: str | bytes) -> Grant:
    """A grant from the stream; ``ValueError`` for anything that is not one of ours."""
    try:
        data = json.loads(text)
        ports = tuple((str(p), int(n)) for p, n in data["ports"])
        if not ports or any(p not in ("tcp", "udp") or not 0 < n < 65536 for p, n in ports):
            raise ValueError(f"bad ports {ports!r}")
        dst = data["destination"]
        return Grant(
            source=ipaddress.ip_address(data["source"]),
            destination=None if dst is None else ipaddress.ip_address(dst),
            ports=ports,
            timeout=int(data["timeout"]),
            expires=int(data["expires"]),
            stanza=int(data["stanza"]),
            username=str(data["username"]),
            message_type=MessageType(int(data["type"])),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a grant: {exc}") from None


def member_name() -> str:
    """This daemon in its group: host name and PID."""
    return f"{socket.gethostname()}/{os.getpid()}"


class GrantSync:
    """Publishes this gateway's grants to its group and hands the group's to ``apply``."""

    def __init__(
        self,
        settings: SyncSettings,
        apply: Callable[[Grant, str], None],
        *,
        member: str | None = None,
        client_factory: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.stream = settings.stream
        self.member = member or member_name()
        self.clock = clock
        self._apply = apply
        self._factory = client_factory or (
            lambda timeout: connect(settings.replay, timeout=timeout)
        )
        self._errors = redis_errors()
        self._outbox: queue.Queue[Grant] = queue.Queue()
        self._pending: collections.deque[Grant] = collections.deque(maxlen=_PENDING_MAX)
        self._stop = threading.Event()
        self._loop: Any = None
        self._threads = [
            threading.Thread(target=self._write, name="grant-sync-out", daemon=True),
            threading.Thread(target=self._read, name="grant-sync-in", daemon=True),
        ]
        self.caught_up = threading.Event()  # the stream has been read to its end once
        # counters (metrics, --status)
        self.published = 0
        self.received = 0
        self.errors = 0

    def start(self, loop: Any) -> None:
        """Share from now on; received grants are applied on ``loop`` (the daemon's)."""
        self._loop = loop
        for thread in self._threads:
            thread.start()
        log.info("sharing grants with group %s as %s", self.settings.group, self.member)

    def publish(self, grant: Grant) -> None:
        """Share ``grant`` (made here) with the group; never blocks."""
        if grant.nat is None:
            self._outbox.put_nowait(grant)

    def stop(self) -> None:
        """Stop both threads."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(_READ_TIMEOUT + 1)

    def stats(self) -> dict[str, float]:
        """Counters, for metrics and ``--status``."""
        return {
            "published": self.published,
            "received": self.received,
            "errors": self.errors,
            "pending": len(self._pending) + self._outbox.qsize(),
        }

    # -- the writer thread -----------------------------------------------------------

    def _write(self) -> None:
        client: Any = None
        outage = _Outage("cannot share this host's grants")
        pause = _BACKOFF[0]
        while not self._stop.is_set():
            if not self._pending:
                try:
                    self._pending.append(self._outbox.get(timeout=0.5))
                except queue.Empty:
                    continue
            while True:  # take whatever else is waiting
                try:
                    self._pending.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            try:
                client = client or self._factory(_WRITE_TIMEOUT)
                self._send(client)
                pause = _BACKOFF[0]
                outage.over()
            except self._errors as exc:
                detail = f"{len(self._pending)} grant(s) of this host waiting"
                client, pause = None, self._failed(client, exc, outage, detail, pause)
        if client is not None:
            with contextlib.suppress(*self._errors):
                client.close()

    def _failed(
        self, client: Any, exc: BaseException, outage: _Outage, detail: str, pause: float
    ) -> float:
        """A thread's call failed: count, say, drop ``client``, wait ``pause``; the next pause."""
        self.errors += 1
        outage.failed(exc, detail)
        if client is not None:
            with contextlib.suppress(*self._errors):
                client.close()
        self._stop.wait(pause)
        return min(pause * 2, _BACKOFF[1])

    def _send(self, client: Any) -> None:
        """Append every pending grant still valid; each leaves the queue once it is in."""
        while self._pending:
            grant = self._pending[0]
            if grant.expires > self.clock():
                fields = {"v": _VERSION, "member": self.member, "grant": encode(grant)}
                client.xadd(self.stream, fields, maxlen=_KEEP, approximate=True)
                self.published += 1
            self._pending.popleft()

    # -- the reader thread -----------------------------------------------------------

    def _read(self) -> None:
        client: Any = None
        outage = _Outage("cannot read the group's grants")
        last = "0"  # from the start: the grants made before this member came are still there
        pause = _BACKOFF[0]
        while not self._stop.is_set():
            try:
                client = client or self._factory(_READ_TIMEOUT)
                answer = client.xread({self.stream: last}, count=100, block=_BLOCK_MS)
                pause = _BACKOFF[0]
                outage.over()
            except self._errors as exc:
                detail = "grants made elsewhere meanwhile are read when it is back"
                client, pause = None, self._failed(client, exc, outage, detail, pause)
                continue
            entries = answer[0][1] if answer else []
            for entry_id, fields in entries:
                last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                self._take(fields)
            if len(entries) < 100:
                self.caught_up.set()
        if client is not None:
            with contextlib.suppress(*self._errors):
                client.close()

    def _take(self, fields: dict[bytes, bytes]) -> None:
        """One stream entry: a grant of another member, still valid, to the loop."""
        member = fields.get(b"member", b"").decode(errors="replace")
        if member == self.member:
            return  # our own, applied when it was made
        try:
            grant = decode(fields.get(b"grant", b""))
        except ValueError as exc:
            log.warning("grant sync: skipping an entry from %s: %s", member, exc)
            return
        if grant.expires <= self.clock():
            return  # over already
        self.received += 1
        self._loop.call_soon_threadsafe(self._apply, grant, member)


class _Outage:
    """One thread's view of Redis: an error when it goes, a reminder a minute, a notice back."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.reminded = 0.0

    def failed(self, exc: BaseException, detail: str) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = self.reminded = now
            log.error("grant sync: %s: Redis failed (%s); %s", self.what, exc, detail)
        elif now - self.reminded >= _REMIND_EVERY:
            self.reminded = now
            log.error("grant sync: %s for %.0f s now (%s); %s", self.what, now - self.since,
                      exc, detail)  # fmt: skip

    def over(self) -> None:
        if self.since is not None:
            log.warning("grant sync: Redis is back after %.0f s", time.monotonic() - self.since)
            self.since = None
