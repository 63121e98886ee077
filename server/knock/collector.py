"""The knock-sequence collector: knocks in, decisions out, no I/O and no clock of its own.

The daemon feeds every :class:`Knock` it captures to :meth:`Collector.feed`
and calls :meth:`Collector.expire` when :meth:`Collector.next_deadline`
passes; both return :class:`Grant` and :class:`Refusal` decisions for it to
act on, log and count. Times are the knocks' capture times (one clock per
collector); nothing here sleeps or reads a clock.

How it differs from fwknopd 1.9.12 (legacy-knock.md §2, §3, §9), each on
purpose and each tested:

* **48-knock sequences** (§9 item 1): after 32 knocks the sequence is
  decrypted; valid padding ends it. Otherwise (a user name of 8 or more
  characters) it waits, within ``KNOCK_INTERVAL`` of the first knock, for 16
  more and decodes all 48 (the full name); if they never come, the 32-knock
  reading (first 8 characters, what 1.x saw) is decided at the deadline.
  1.x decided after 32 and took the last 16 knocks for a new sequence.
* **Retransmitted SYNs** (§9 item 2) are dropped: a TCP knock that repeats
  the source port, destination port and sequence number of one of the last
  8 SYNs from that source is the kernel's retransmission, not a knock.
* **Encrypted sequences start with ``Salted__``**: every sequence's first 8
  knocks are ``offset + "Salted__"``, so the collector keeps state only for a
  source whose knock is ``offset + 83`` ("S") and, during those 8 knocks,
  ignores knocks that do not continue the header. Junk to random ports of
  the range costs no memory; a stray knock in the header does not break the
  sequence. After the header every knock in the range counts (1.x rule).
* **Shared sequences** keep 1.x's rule that any other knock from the source
  breaks progress, but a breaking knock that equals step 0 starts over at
  step 1 (§9 item 3). ``KNOCK_INTERVAL`` applies (1.x ignored it for shared
  sequences, so a half-done sequence waited forever), measured from the
  first knock's capture time; ``MIN_TIME_DIFF`` / ``MAX_TIME_DIFF`` are strict
  as in 1.x but use capture times with fractions, not whole-second batches.
* **Allow IP** (§9 item 6): 0.0.0.0 means the knock source (refused under
  ``REQUIRE_SOURCE_ADDRESS``); any other decoded address must be the source
  itself or inside the stanza's ``KNOCK_ALLOW_IP`` networks, and never in
  ``BLACKLIST``. 1.x opened whatever address the plaintext named.
* **Never more than the stanza allows**: the decoded proto/port is added to
  ``OPEN_PORTS`` only when it is one of them or the stanza has
  ``PERMIT_CLIENT_PORTS``; otherwise the grant is ``OPEN_PORTS`` alone and
  the decision names the refused request (1.x opened the union always).
  icmp in either opens icmp (1.x logged it and created nothing).
* **Replays** (§9 item 5): a sequence that decodes is remembered by its
  replay digest (:attr:`fwknop_core.DecodedSequence.replay_digest`) before
  any policy check, as SPA packets are; a sequence seen before is refused.
  The :class:`ReplayGuard` is the daemon's persistent store; the in-memory
  default forgets at restart.
* **KNOCK_LIMIT** counts granted sequences (not firewall rules) per stanza
  and knocking source, for both kinds, and nothing resets it but a restart
  (the daemon may persist :meth:`Collector.limit_counts`). ``KNOCK_LIMIT 0``
  grants nothing. In 1.x it counted rules, was off by one, was reset by any
  stray packet and never triggered for encrypted sequences.
* **REQUIRE_OS** applies to both kinds (1.x ignored it for shared ones) and
  is checked against the sequence's own TCP knocks: every SYN of the
  sequence must satisfy it, and a sequence with no SYN fails it. 1.x asked
  every guess ever made for the address, kept for the life of the process.
* **One verdict per sequence**: stanzas with the same offset see the same
  knocks; when one stanza's key decodes them, the others' failures to
  decrypt are not reported (1.x logged a failure for each other stanza).
* **Local knocks only**: given the host's addresses (``destinations``), a
  knock to another address (a router sees those pass) does not count; 1.x
  saw what its INPUT chain logged, so the same.
* **Bounded memory**: at most ``max_sources`` sources have state (the least
  recently knocking one is dropped when a new one needs room, counted as
  ``evicted``); a source's state is at most 48 knocks per stanza and goes at
  ``KNOCK_INTERVAL``; the replay and limit memories are bounded too.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fwknop_core import (
    DecodedSequence,
    InvalidKnockSequence,
    KnockStep,
    decode_knock_sequence,
)

from .osfp import OsDatabase, OsRequirement
from .rules import EncryptedRule, Network, Port, Rule, SharedRule
from .wire import TCP, UDP, Address, Knock, SynFingerprint, parse_knock, peek_knock

__all__ = [
    "DEFAULT_MAX_SOURCES",
    "Collector",
    "Decision",
    "Grant",
    "MemoryReplay",
    "Refusal",
    "RefuseReason",
    "ReplayGuard",
]

DEFAULT_MAX_SOURCES = 16384
_RECENT_SYNS = 8
_MAX_COUNTS = 65536
_HEADER = b"Salted__"
_SHORT, _LONG = 32, 48


class RefuseReason(enum.Enum):
    """Why a sequence was not granted."""

    TIMEOUT = "sequence not finished within KNOCK_INTERVAL"
    DECRYPT_FAILED = "sequence decrypt failed"
    REPLAY = "replayed sequence"
    ALLOW_IP_ZERO = "allow IP 0.0.0.0 refused (REQUIRE_SOURCE_ADDRESS)"
    ALLOW_IP_NOT_SOURCE = "allow IP is not the knock source"
    BLACKLISTED = "address in BLACKLIST"
    NO_FINGERPRINT = "no TCP SYN in the sequence to fingerprint"
    OS_MISMATCH = "OS fingerprint mismatch"
    USERNAME = "username mismatch"
    KNOCK_LIMIT = "KNOCK_LIMIT reached"
    TIMING = "MIN_TIME_DIFF/MAX_TIME_DIFF not met"


@dataclass(frozen=True, slots=True)
class Grant:
    """Open ``ports`` for ``allow_ip`` for ``timeout`` seconds: a sequence succeeded."""

    rule: str
    kind: str  # "encrypted" or "shared"
    source: Address
    allow_ip: Address
    ports: frozenset[Port]
    timeout: int
    time: float
    username: bytes | None = None
    request: str | None = None  # the decoded proto/port
    refused_request: str | None = None  # the decoded proto/port, outside OPEN_PORTS
    replay_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A sequence that was refused, and why (``detail`` never holds key material)."""

    rule: str
    kind: str
    source: Address
    reason: RefuseReason
    time: float
    detail: str = ""
    replay_digest: str | None = None

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.kind} sequence from {self.source} ({self.rule}): {self.reason.value}{extra}"


Decision = Grant | Refusal


class ReplayGuard(Protocol):
    """Where replay digests live (the daemon's persistent replay store)."""

    def remember(self, digest: str, now: float) -> bool:
        """Record ``digest``; False if it was already there (a replay)."""
        ...  # pragma: no cover - protocol


@dataclass
class MemoryReplay:
    """An in-memory ReplayGuard for tests and for a daemon without a replay file (bounded)."""

    limit: int = 100_000
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def remember(self, digest: str, now: float) -> bool:
        """Record ``digest``; False if it was already there."""
        if digest in self._seen:
            return False
        self._seen[digest] = now
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True


class _Enc:
    __slots__ = ("data", "pending", "start", "syns")

    def __init__(self, start: float) -> None:
        self.data = bytearray()
        self.start = start
        self.syns: set[SynFingerprint] = set()
        self.pending: DecodedSequence | None = None


class _Shared:
    __slots__ = ("last", "pos", "start", "syns")

    def __init__(self, start: float) -> None:
        self.pos = 0
        self.start = start
        self.last = start
        self.syns: set[SynFingerprint] = set()


class _Source:
    __slots__ = ("enc", "shared", "syns")

    def __init__(self) -> None:
        self.enc: dict[str, _Enc] = {}
        self.shared: dict[str, _Shared] = {}
        self.syns: deque[tuple[int, int | None, int]] = deque(maxlen=_RECENT_SYNS)

    def empty(self) -> bool:
        return not self.enc and not self.shared


def _step_is(step: KnockStep, knock: Knock) -> bool:
    return step.proto == knock.proto and step.port == knock.port


class Collector:
    """Knock sequences of every source, against every sequence stanza."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        os_db: OsDatabase | None = None,
        replay: ReplayGuard | None = None,
        blacklist: Sequence[Network] = (),
        max_sources: int = DEFAULT_MAX_SOURCES,
        counts: dict[tuple[str, str], int] | None = None,
    ) -> None:
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        self.os_db = os_db
        self.replay: ReplayGuard = replay if replay is not None else MemoryReplay()
        self.blacklist = tuple(blacklist)
        # the host's own addresses: knocks to others do not count (None: every knock counts)
        self.destinations: tuple[Network, ...] | None = None
        self.max_sources = max_sources
        self.stats: Counter[str] = Counter()
        self._sources: OrderedDict[Address, _Source] = OrderedDict()
        self._packed: set[bytes] = set()  # the same sources, packed: the flood screen's lookup
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict(counts or {})
        self._set_rules(rules)

    # -- configuration ---------------------------------------------------------------

    def _set_rules(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("two sequence stanzas share one name")
        self._by_name = {r.name: r for r in self.rules}
        self._enc_rules = {r.name: r for r in self.rules if isinstance(r, EncryptedRule)}
        self._shared_rules = {r.name: r for r in self.rules if isinstance(r, SharedRule)}
        # knocks that may start a sequence: offset + "S", or a shared step 0
        self._starts: set[tuple[int, int | None]] = set()
        for rule in self.rules:
            if isinstance(rule, EncryptedRule):
                self._starts.add((TCP, rule.offset + _HEADER[0]))
                self._starts.add((UDP, rule.offset + _HEADER[0]))
            else:
                self._starts.add((rule.steps[0].proto, rule.steps[0].port))

    def reconfigure(self, rules: Iterable[Rule]) -> None:
        """New rules (SIGHUP): progress under unchanged stanzas, replays and counts are kept."""
        old = self._by_name
        self._set_rules(rules)
        for src in self._sources.values():
            for table in (src.enc, src.shared):
                for name in list(table):
                    if self._by_name.get(name) != old.get(name):
                        del table[name]

    def limit_counts(self) -> dict[tuple[str, str], int]:
        """KNOCK_LIMIT counters, (stanza name, source) -> grants, to persist if wanted."""
        return dict(self._counts)

    @property
    def sources(self) -> int:
        """How many sources have sequence state now."""
        return len(self._sources)

    # -- feeding ---------------------------------------------------------------------

    def _blacklisted(self, address: Address) -> bool:
        return any(address in net for net in self.blacklist)

    def feed_packet(self, ip: bytes, time: float) -> list[Decision]:
        """A captured IP packet: screened cheaply, parsed and fed only if it may matter.

        What a capture loop should call: under a flood of junk to the knock
        ports, a packet from a source without state that cannot start a
        sequence costs one header peek and two set lookups, never a parse.
        """
        head = peek_knock(ip)
        if head is None:
            return []
        packed, proto, port = head
        if packed not in self._packed and (proto, port) not in self._starts:
            self.stats["screened"] += 1
            return []
        knock = parse_knock(ip, time)
        return [] if knock is None else self.feed(knock)

    def feed(self, knock: Knock) -> list[Decision]:
        """One captured knock; the decisions it completes (usually none)."""
        self.stats["knocks"] += 1
        src = self._sources.get(knock.source)
        if src is None and (knock.proto, knock.port) not in self._starts:
            return []
        if self._blacklisted(knock.source):
            self.stats["blacklisted"] += 1
            return []
        local = self.destinations
        if local is not None and (
            knock.destination is None or not any(knock.destination in net for net in local)
        ):
            self.stats["not local"] += 1
            return []
        if knock.proto == TCP and knock.seq is not None and src is not None:
            key = (knock.sport, knock.port, knock.seq)
            if key in src.syns:
                self.stats["duplicates"] += 1
                return []
            src.syns.append(key)
        out: list[Decision] = []
        state = _Source() if src is None else src
        for rule in self.rules:
            if not rule.matches_source(knock.source):
                continue
            if isinstance(rule, EncryptedRule):
                self._encrypted(rule, knock, state, out)
            else:
                self._shared(rule, knock, state, out)
        if src is not None:
            self._sources.move_to_end(knock.source)
        elif not state.empty():  # a sequence began: the source gets state (room made)
            if len(self._sources) >= self.max_sources:
                gone, _ = self._sources.popitem(last=False)
                self._packed.discard(gone.packed)
                self.stats["evicted"] += 1
            self._sources[knock.source] = state
            self._packed.add(knock.source.packed)
            if knock.proto == TCP and knock.seq is not None:
                state.syns.append((knock.sport, knock.port, knock.seq))
        return self._other_keys(out, state) if out else out

    def _other_keys(self, out: list[Decision], state: _Source) -> list[Decision]:
        """A sequence one stanza's key opened is no decrypt failure of the others (same range).

        Stanzas of one offset see the same knocks: when one decodes them (or
        holds a 32-knock reading, waiting for 16 more), the others' failures
        are counted as ``other stanza's key`` and not reported.
        """
        failed = [
            d for d in out if isinstance(d, Refusal) and d.reason is RefuseReason.DECRYPT_FAILED
        ]
        if not failed:
            return out
        opened = any(d.kind == "encrypted" and d.replay_digest is not None for d in out) or any(
            enc.pending is not None for enc in state.enc.values()
        )
        if not opened:
            self.stats["refused decrypt_failed"] += len(failed)
            return out
        self.stats["other stanza's key"] += len(failed)
        return [d for d in out if not any(d is f for f in failed)]

    def _encrypted(
        self, rule: EncryptedRule, knock: Knock, src: _Source, out: list[Decision]
    ) -> None:
        st = src.enc.get(rule.name)
        if st is not None and knock.time - st.start > rule.knock_interval:
            del src.enc[rule.name]
            self._enc_timeout(rule, st, knock.source, knock.time, out)
            st = None
        port = knock.port
        if knock.proto not in (TCP, UDP) or port is None or port not in rule.ports:
            return  # other knocks neither count nor reset (1.x)
        byte = port - rule.offset
        if st is None:
            if byte == _HEADER[0]:
                st = src.enc[rule.name] = _Enc(knock.time)
                self._add(rule.require_os, st.syns, knock)
                st.data.append(byte)
            return
        have = len(st.data)
        if have < len(_HEADER):
            if byte == _HEADER[have]:
                st.data.append(byte)
                self._add(rule.require_os, st.syns, knock)
            elif byte == _HEADER[0]:  # a new sequence begins
                fresh = _Enc(knock.time)
                fresh.data.append(byte)
                self._add(rule.require_os, fresh.syns, knock)
                src.enc[rule.name] = fresh
            return
        st.data.append(byte)
        self._add(rule.require_os, st.syns, knock)
        if len(st.data) not in (_SHORT, _LONG):
            return
        ports = [rule.offset + b for b in st.data]
        try:
            decoded = decode_knock_sequence(ports, rule.key, offset=rule.offset)
        except InvalidKnockSequence as exc:
            del src.enc[rule.name]
            if st.pending is not None:  # the 16 knocks after it were no tail of it
                out.append(self._decide_encrypted(rule, st.pending, st, knock.source, knock.time))
            else:  # counted in feed, unless another stanza's key opened the same knocks
                reason = RefuseReason.DECRYPT_FAILED
                out.append(
                    Refusal(rule.name, "encrypted", knock.source, reason, knock.time, str(exc))
                )
            return
        if len(st.data) == _SHORT and not decoded.padded:
            st.pending = decoded  # the head of a 48-knock sequence (or junk): wait
            return
        del src.enc[rule.name]
        chosen = decoded if decoded.padded or st.pending is None else st.pending
        out.append(self._decide_encrypted(rule, chosen, st, knock.source, knock.time))

    def _enc_timeout(
        self, rule: EncryptedRule, st: _Enc, source: Address, now: float, out: list[Decision]
    ) -> None:
        if st.pending is not None:
            out.append(self._decide_encrypted(rule, st.pending, st, source, now))
        elif len(st.data) >= len(_HEADER):
            out.append(
                self._refuse(
                    rule, source, RefuseReason.TIMEOUT, now, detail=f"{len(st.data)} knocks"
                )
            )

    def _shared(self, rule: SharedRule, knock: Knock, src: _Source, out: list[Decision]) -> None:
        st = src.shared.get(rule.name)
        if st is not None and knock.time - st.start > rule.knock_interval:
            del src.shared[rule.name]
            self._shared_timeout(rule, st, knock.source, knock.time, out)
            st = None
        steps = rule.steps
        if st is not None and _step_is(steps[st.pos], knock):
            gap = knock.time - st.last
            lo, hi = rule.min_time_diff, rule.max_time_diff
            if (lo is not None and not gap > lo) or (hi is not None and not gap < hi):
                del src.shared[rule.name]
                out.append(
                    self._refuse(
                        rule,
                        knock.source,
                        RefuseReason.TIMING,
                        knock.time,
                        detail=f"{gap:.3f} s before step {st.pos + 1}",
                    )
                )
                return
            st.pos += 1
            st.last = knock.time
            self._add(rule.require_os, st.syns, knock)
        else:
            if st is not None:  # any other knock breaks progress (1.x)
                del src.shared[rule.name]
            if not _step_is(steps[0], knock):
                return
            st = _Shared(knock.time)
            st.pos = 1
            self._add(rule.require_os, st.syns, knock)
            src.shared[rule.name] = st
        if st.pos == len(steps):
            src.shared.pop(rule.name, None)
            out.append(self._decide_shared(rule, st, knock.source, knock.time))

    def _shared_timeout(
        self, rule: SharedRule, st: _Shared, source: Address, now: float, out: list[Decision]
    ) -> None:
        if st.pos >= 2:  # one matching knock is too common to report
            out.append(
                self._refuse(
                    rule,
                    source,
                    RefuseReason.TIMEOUT,
                    now,
                    detail=f"{st.pos} of {len(rule.steps)} steps",
                )
            )

    @staticmethod
    def _add(need: OsRequirement | None, syns: set[SynFingerprint], knock: Knock) -> None:
        if need is not None and knock.syn is not None:
            syns.add(knock.syn)

    # -- deciding ----------------------------------------------------------------------

    @staticmethod
    def _kind(rule: Rule) -> str:
        return "encrypted" if isinstance(rule, EncryptedRule) else "shared"

    def _refuse(
        self,
        rule: Rule,
        source: Address,
        reason: RefuseReason,
        now: float,
        *,
        detail: str = "",
        digest: str | None = None,
    ) -> Refusal:
        self.stats[f"refused {reason.name.lower()}"] += 1
        return Refusal(rule.name, self._kind(rule), source, reason, now, detail, digest)

    def _os_refusal(
        self, rule: Rule, syns: set[SynFingerprint], source: Address, now: float, digest: str | None
    ) -> Refusal | None:
        need = rule.require_os
        if need is None:
            return None
        if not syns:
            return self._refuse(
                rule, source, RefuseReason.NO_FINGERPRINT, now, detail=str(need), digest=digest
            )
        for fp in syns:
            guesses = self.os_db.guesses(fp) if self.os_db is not None else ()
            if not need.met_by(guesses):
                seen = ", ".join(str(g) for g in guesses) or "no signature matches"
                return self._refuse(
                    rule,
                    source,
                    RefuseReason.OS_MISMATCH,
                    now,
                    detail=f"expected {need}, got {seen}",
                    digest=digest,
                )
        return None

    def _limit_refusal(
        self, rule: Rule, source: Address, now: float, digest: str | None
    ) -> Refusal | None:
        if rule.knock_limit is None:
            return None
        key = (rule.name, str(source))
        used = self._counts.get(key, 0)
        if used >= rule.knock_limit:
            return self._refuse(
                rule,
                source,
                RefuseReason.KNOCK_LIMIT,
                now,
                detail=f"{used} of {rule.knock_limit} used",
                digest=digest,
            )
        self._counts[key] = used + 1
        self._counts.move_to_end(key)
        if len(self._counts) > _MAX_COUNTS:
            self._counts.popitem(last=False)
        return None

    def _decide_encrypted(
        self, rule: EncryptedRule, decoded: DecodedSequence, st: _Enc, source: Address, now: float
    ) -> Decision:
        digest = decoded.replay_digest
        request = decoded.request
        if not self.replay.remember(digest, now):
            return self._refuse(
                rule, source, RefuseReason.REPLAY, now, detail=request.access, digest=digest
            )
        allow: Address
        if request.source_address:
            if rule.require_source_address:
                return self._refuse(rule, source, RefuseReason.ALLOW_IP_ZERO, now, digest=digest)
            allow = source
        else:
            allow = ipaddress.IPv4Address(request.allow_ip)
            if allow != source and not any(allow in net for net in rule.allow_ip):
                return self._refuse(
                    rule,
                    source,
                    RefuseReason.ALLOW_IP_NOT_SOURCE,
                    now,
                    detail=f"asks for {allow}",
                    digest=digest,
                )
        if self._blacklisted(allow):
            return self._refuse(
                rule, source, RefuseReason.BLACKLISTED, now, detail=str(allow), digest=digest
            )
        refusal = self._os_refusal(rule, st.syns, source, now, digest)
        if refusal is not None:
            return refusal
        names = rule.require_usernames
        if names is not None and request.username not in names:
            got = request.username.decode("latin-1") or "(none)"
            return self._refuse(
                rule, source, RefuseReason.USERNAME, now, detail=f"got {got!r}", digest=digest
            )
        wanted: Port = (request.proto_name, request.port)
        allowed = wanted in rule.open_ports or rule.permit_client_ports
        refusal = self._limit_refusal(rule, source, now, digest)
        if refusal is not None:
            return refusal
        return self._grant(
            rule,
            source,
            allow,
            rule.open_ports | {wanted} if allowed else rule.open_ports,
            now,
            username=request.username,
            request=request.access,
            refused_request=None if allowed else request.access,
            replay_digest=digest,
        )

    def _grant(
        self, rule: Rule, source: Address, allow: Address, ports: frozenset[Port], now: float,
        **extra: Any,
    ) -> Grant:  # fmt: skip
        kind = self._kind(rule)
        self.stats[f"granted {kind}"] += 1
        return Grant(rule.name, kind, source, allow, ports, rule.fw_access_timeout, now, **extra)

    def _decide_shared(
        self, rule: SharedRule, st: _Shared, source: Address, now: float
    ) -> Decision:
        refusal = self._os_refusal(rule, st.syns, source, now, None)
        if refusal is None:
            refusal = self._limit_refusal(rule, source, now, None)
        if refusal is not None:
            return refusal
        return self._grant(rule, source, source, rule.open_ports, now)

    # -- time ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The capture time at which :meth:`expire` next has something to do, if any."""
        ends = [
            state.start + self._by_name[name].knock_interval
            for src in self._sources.values()
            for table in (src.enc, src.shared)
            for name, state in table.items()
        ]
        return min(ends, default=None)

    def expire(self, now: float) -> list[Decision]:
        """Drop sequences older than their KNOCK_INTERVAL; decide waiting 32-knock readings."""
        out: list[Decision] = []
        for address in list(self._sources):
            src = self._sources[address]
            for name, enc in list(src.enc.items()):
                enc_rule = self._enc_rules[name]
                if now - enc.start > enc_rule.knock_interval:
                    del src.enc[name]
                    self._enc_timeout(enc_rule, enc, address, now, out)
            for name, sh in list(src.shared.items()):
                shared_rule = self._shared_rules[name]
                if now - sh.start > shared_rule.knock_interval:
                    del src.shared[name]
                    self._shared_timeout(shared_rule, sh, address, now, out)
            if src.empty():
                del self._sources[address]
                self._packed.discard(address.packed)
        return out
