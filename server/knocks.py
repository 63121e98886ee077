"""Knock sequences in the daemon: captured knocks to the collector, its decisions to the firewall.

The pure part is ``knock/`` (the parser, the sequence collector, OS
fingerprints); the capture is ``capture/syn.py``. This module is where they
meet the edges, as ``dispatch.py`` is for SPA: a sequence's grant goes to
the same firewall driver as an SPA grant (nftables, iptables, ... each
closes it when its time is up), a refusal is counted and logged at a
bounded rate, the replay digest of a sequence that decoded goes to the same
replay store as SPA digests (persistent across restarts), and
``KNOCK_LIMIT`` counts are written to ``KNOCK_LIMIT_FILE`` after each
counted grant, so neither a SIGHUP nor a restart resets them.

``KnockSettings`` is what fwknopd.conf and access.conf say about knocks;
``load_os_database`` reads the signature files (``P0F_FILE`` for pf.os,
``P0F_FP_FILE`` for p0f v3) when a stanza asks for an OS or ``--os`` runs.

Where we differ from a 1.x grant: an icmp grant opens nothing (the backends
open tcp and udp; 1.x logged icmp grants and created no rule either), and
an encrypted sequence's grant is logged as low confidence (no MAC, a
one-byte checksum).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fwknop_core import MessageType

from .access import AccessPolicy, parse_networks
from .capture.syn import KnockSource, local_addresses
from .config import ServerConfig
from .errors import ConfigError, Problem
from .firewall.driver import FirewallDriver
from .knock import (
    Collector,
    Decision,
    EncryptedRule,
    Grant,
    MemoryReplay,
    OsDatabase,
    OsDatabaseError,
    Refusal,
    RefuseReason,
    Rule,
    SynMemory,
    capture_filter,
    parse_knock,
    parse_p0f,
    parse_pf_os,
    peek_knock,
)
from .knock.rules import Network
from .knockstanza import SequenceStanza
from .ratelog import RateLimitedLog
from .vocab import Grant as FirewallGrant
from .vocab import Packet, ReplayStore

__all__ = ["KnockSettings", "Knocks", "load_os_database", "spa_syn_filter"]

log = logging.getLogger("fwknop_server")
_TCP = 6
_FOREVER = float("inf")  # a sequence has no timestamp: its digest is kept for good
_TIMEOUT = RefuseReason.TIMEOUT
_SYN_TERMS = (
    "(tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst|tcp-fin) == tcp-syn and ({f}))",
    "(ip6 and tcp and ip6[53] & 0x17 == 0x02 and ({f}))",
)


def spa_syn_filter(spa_filter: str) -> str:
    """The pure SYNs of the connections SPA capture (``PCAP_FILTER``) sees."""
    return " or ".join(term.format(f=spa_filter) for term in _SYN_TERMS)


@dataclass(frozen=True)
class KnockSettings:
    """What the files say about knock sequences and OS fingerprints."""

    sequences: tuple[SequenceStanza, ...] = ()
    os_db: OsDatabase | None = None
    blacklist: tuple[Network, ...] = ()  # BLACKLIST
    interface: str = "eth0"  # PCAP_INTF (the knock listener sniffs where SPA capture does)
    any_direction: bool = False
    spa_filter: str | None = None  # PCAP_FILTER, when an SPA stanza has REQUIRE_OS
    limits_file: Path | None = None  # KNOCK_LIMIT_FILE (None: counts kept in memory only)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The sequence stanzas' rules, in file order."""
        return tuple(s.rule for s in self.sequences)

    @property
    def capture_filter(self) -> str | None:
        """The knock listener's filter (None: nothing to listen for)."""
        terms = [t for t in (capture_filter(self.rules),) if t]
        if self.spa_filter is not None:
            terms.append(spa_syn_filter(self.spa_filter))
        return " or ".join(terms) if terms else None

    @classmethod
    def from_config(
        cls, config: ServerConfig, policy: AccessPolicy, *, test_mode: bool = False
    ) -> KnockSettings:
        """The knock settings of both files; ``ConfigError`` for a bad BLACKLIST or signatures."""
        needs_os = any(s.rule.require_os for s in policy.sequences) or any(
            s.require_os for s in policy.stanzas
        )
        spa_os = any(s.require_os for s in policy.stanzas)
        return cls(
            sequences=policy.sequences,
            os_db=load_os_database(config, required=True) if needs_os else None,
            blacklist=_blacklist(config),
            interface=config.required("PCAP_INTF"),
            any_direction=config.flag("ENABLE_PCAP_ANY_DIRECTION"),
            spa_filter=config.required("PCAP_FILTER") if spa_os else None,
            limits_file=None if test_mode else config.file("KNOCK_LIMIT_FILE"),
        )


def _blacklist(config: ServerConfig) -> tuple[Network, ...]:
    text = config.text("BLACKLIST")
    if text is None:
        return ()
    try:
        return parse_networks(text)
    except ValueError as exc:
        path, line = config.origins.get("BLACKLIST", (config.path, 0))
        raise ConfigError([Problem(path, line or None, f"BLACKLIST: {exc}")]) from None


def _signature_files(config: ServerConfig, name: str) -> Iterable[tuple[str, str]]:
    """(path, text) of each file ``name`` lists; a missing one is a problem only if it was set."""
    problems = []
    for item in (config.text(name) or "").split(","):
        path = Path(item.strip())
        if not item.strip():
            continue
        try:
            yield str(path), path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if name in config.origins:
                where, line = config.origins[name]
                problems.append(Problem(where, line, f"{name}: cannot read {path}: {exc.strerror}"))
    if problems:
        raise ConfigError(problems)


def load_os_database(config: ServerConfig, *, required: bool) -> OsDatabase | None:
    """pf.os (``P0F_FILE``) and p0f v3 (``P0F_FP_FILE``) signatures, with ``MAX_HOPS``.

    ``required`` (a stanza has ``REQUIRE_OS``): no signature at all is a
    ``ConfigError``; otherwise None then.
    """
    try:
        pf_os = list(_signature_files(config, "P0F_FILE"))
        p0f = list(_signature_files(config, "P0F_FP_FILE"))
        database = OsDatabase(
            tuple(sig for path, text in pf_os for sig in parse_pf_os(text, path)),
            tuple(sig for path, text in p0f for sig in parse_p0f(text, path)),
            config.number("MAX_HOPS"),
        )
    except OsDatabaseError as exc:
        raise ConfigError([Problem(Path(exc.source), exc.line, exc.message)]) from None
    if database.pf_os or database.p0f:
        return database
    if required:
        where, line = config.origins.get("P0F_FILE", (config.path, 0))
        raise ConfigError(
            [
                Problem(
                    where,
                    line or None,
                    "REQUIRE_OS needs OS signatures: none found in P0F_FILE "
                    f"({config.text('P0F_FILE')}) or P0F_FP_FILE ({config.text('P0F_FP_FILE')}); "
                    "install p0f (/etc/p0f/p0f.fp) or point either at a signature file",
                )
            ]
        )
    return None


class _StoreGuard:
    """The replay store as the collector's replay guard: sequence digests beside SPA's."""

    def __init__(self, store: ReplayStore) -> None:
        self.store = store

    def remember(self, digest: str, now: float) -> bool:
        # a sequence carries no timestamp: it can be replayed as long as its key is in use
        return self.store.add(digest, _KNOCK_PACKET, _FOREVER)


# what the store records beside a sequence's digest (no packet carried it: many did)
_KNOCK_PACKET = Packet(b"", ipaddress.IPv4Address(0), None, _TCP)


class Knocks:
    """The knock listener's consumer: feeds the collector, acts on its decisions."""

    def __init__(
        self,
        settings: KnockSettings,
        firewall: FirewallDriver,
        replay: ReplayStore | None,
        *,
        refusals: RateLimitedLog | None = None,
        clock: Callable[[], float] = time.time,
        test_mode: bool = False,
        ipv6: bool = False,
    ) -> None:
        self.settings = settings
        self.firewall = firewall
        # counters and the bounded log of refusals (the daemon's: SPA's and these in one table)
        self.refusals = refusals or RateLimitedLog(logging.getLogger("fwknop_server.refused"))
        self.clock = clock
        self.test_mode = test_mode
        self.ipv6 = ipv6  # whether the firewall can open for IPv6
        self.syns = SynMemory()  # for REQUIRE_OS in SPA stanzas
        self.collector = Collector(
            settings.rules,
            os_db=settings.os_db,
            replay=MemoryReplay() if replay is None else _StoreGuard(replay),
            blacklist=settings.blacklist,
            counts=_load_counts(settings.limits_file),
        )
        self._configure(settings)

    def _configure(self, settings: KnockSettings) -> None:
        self.settings = settings
        self._stanzas = {s.rule.name: s for s in settings.sequences}
        self._limited = {s.rule.name for s in settings.sequences if s.rule.knock_limit is not None}
        self._knock_tcp: set[int | None] = set()  # the knock ports (an SPA SYN is to another)
        for rule in settings.rules:
            if isinstance(rule, EncryptedRule):
                self._knock_tcp.update(rule.ports)
            else:
                self._knock_tcp.update(step.port for step in rule.steps)

    def reconfigure(self, settings: KnockSettings) -> None:
        """SIGHUP: new rules; progress under unchanged stanzas, replays and counts are kept."""
        self.collector.reconfigure(settings.rules)
        self.collector.os_db = settings.os_db
        self.collector.blacklist = settings.blacklist
        self._configure(settings)

    def refresh_addresses(self) -> None:
        """Read this host's addresses again: knocks to other addresses do not count."""
        self.collector.destinations = local_addresses()

    # -- packets -----------------------------------------------------------------------

    def read(self, source: KnockSource) -> int:
        """Read and act on every packet waiting (the reader's callback); how many there were."""
        try:
            packets = source.read()
        except OSError as exc:
            log.error("knock capture failed: %s", exc)
            return 0
        now = self.clock()
        for ip in packets:
            self.feed(ip, now)
        return len(packets)

    def feed(self, ip: bytes, now: float) -> None:
        """One captured packet (IP layer on) at ``now``; nothing in it can make this raise."""
        try:
            decisions = self.collector.feed_packet(ip, now)
            if self.settings.spa_filter is not None:
                self._spa_syn(ip, now)
        except Exception:  # a packet must never stop capture
            log.exception("internal error on a knock packet")
            self.refusals.count("internal_error")
            return
        self._act_all(decisions)

    def _spa_syn(self, ip: bytes, now: float) -> None:
        """A SYN of an SPA connection (not a knock port): its fingerprint, for REQUIRE_OS."""
        head = peek_knock(ip)
        if head is None or head[1] != _TCP or head[2] in self._knock_tcp:
            return
        knock = parse_knock(ip, now)
        if knock is not None:
            self.syns.remember(knock)

    def expire(self) -> None:
        """The timer: sequences past their KNOCK_INTERVAL are decided."""
        self.finish(self.clock())

    def finish(self, now: float) -> None:
        """Decide what is due at ``now`` (a capture file's end: its last time, plus the longest
        interval, so that every sequence still waiting is decided)."""
        try:
            decisions = self.collector.expire(now)
        except Exception:
            log.exception("internal error expiring knock sequences")
            self.refusals.count("internal_error")
            return
        self._act_all(decisions)

    # -- decisions ---------------------------------------------------------------------

    def _act_all(self, decisions: list[Decision]) -> None:
        """Act on each; several stanzas' failures to decrypt one source's knocks are one refusal."""
        failed = [
            d
            for d in decisions
            if isinstance(d, Refusal) and d.reason is RefuseReason.DECRYPT_FAILED
        ]
        if len(failed) > 1:
            decisions = [d for d in decisions if not any(d is f for f in failed)]
            detail = "; ".join(f"{self._where(f.rule)}: {f.detail}" for f in failed)
            decisions.append(dataclasses.replace(failed[0], rule="", detail=detail))
        for decision in decisions:
            self._act(decision)

    def _act(self, decision: Decision) -> None:
        try:
            if isinstance(decision, Grant):
                self._grant(decision)
            else:
                self._refuse(decision)
        except Exception:  # acting must not stop capture either
            log.exception("internal error acting on a knock sequence")
            self.refusals.count("internal_error")

    def _where(self, rule: str) -> str:
        stanza = self._stanzas.get(rule)
        return f"stanza #{stanza.number}" if stanza is not None else rule or "every stanza"

    def _refuse(self, refusal: Refusal) -> None:
        key = f"knock_{refusal.reason.name.lower()}"
        level = logging.INFO if refusal.reason is _TIMEOUT else logging.WARNING
        if self.refusals.admit(key, level):
            detail = f": {refusal.detail}" if refusal.detail else ""
            log.log(
                level,
                "refused %s knock sequence from %s (%s): %s%s",
                refusal.kind, refusal.source, self._where(refusal.rule), refusal.reason.value,
                detail,
            )  # fmt: skip

    def _grant(self, grant: Grant) -> None:
        where = self._where(grant.rule)
        if grant.rule in self._limited:
            self._save_counts()
        if grant.refused_request is not None:
            log.info(
                "%s knock sequence from %s (%s) asked for %s, which OPEN_PORTS does not allow",
                grant.kind, grant.source, where, grant.refused_request,
            )  # fmt: skip
        ports = tuple(sorted(p for p in grant.ports if p[0] != "icmp"))
        if len(ports) < len(grant.ports):
            log.info("icmp for %s is not opened: the firewall backends open tcp and udp ports",
                     grant.allow_ip)  # fmt: skip
        text = ",".join(f"{p}/{n}" for p, n in ports)
        user = (grant.username or b"").decode("utf-8", "replace")
        how = (
            f"user {user or '(none)'}; low confidence: no MAC, a one-byte checksum"
            if grant.kind == "encrypted"
            else "a plain sequence anyone on the path can replay"
        )
        if self.test_mode:
            self.refusals.count("knock_test_mode")
            log.info("(%s) %s knock sequence from %s for %s %s: --test mode, not opening",
                     where, grant.kind, grant.source, grant.allow_ip, text)  # fmt: skip
            return
        if grant.allow_ip.version == 6 and not self.ipv6:
            self.refusals.count("knock_ipv6_allow")
            log.warning("refused %s knock sequence from %s (%s): the firewall cannot open for "
                        "IPv6 %s", grant.kind, grant.source, where, grant.allow_ip)  # fmt: skip
            return
        if not ports:
            return
        now = self.clock()
        opening = FirewallGrant(
            source=grant.allow_ip,
            destination=None,
            ports=ports,
            timeout=grant.timeout,
            expires=int(now) + grant.timeout,
            stanza=self._stanzas[grant.rule].number if grant.rule in self._stanzas else 0,
            username=user,
            message_type=MessageType.ACCESS,
        )
        self.refusals.count(f"knock_granted_{grant.kind}")
        if self.firewall.grant(opening, now):
            log.info("%s knock sequence from %s (%s, %s): opening %s for %s for %d s",
                     grant.kind, grant.source, where, how, text, grant.allow_ip,
                     grant.timeout)  # fmt: skip

    # -- KNOCK_LIMIT counts --------------------------------------------------------------

    def _save_counts(self) -> None:
        path = self.settings.limits_file
        if path is None:
            return
        counts = [[name, source, n] for (name, source), n in self.collector.limit_counts().items()]
        try:
            _write_private(path, json.dumps({"version": 1, "counts": counts}).encode())
        except OSError as exc:
            log.error("cannot keep KNOCK_LIMIT counts in %s: %s", path, exc)

    def summary(self) -> str:
        """The collector's own counters (knocks, screened, duplicates, evicted ...)."""
        stats = self.collector.stats
        ranked = sorted(stats.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{k.replace(' ', '_')}={v}" for k, v in ranked) or "nothing yet"
        return f"{shown}; {self.collector.sources} source(s) with sequences in progress"


def _load_counts(path: Path | None) -> dict[tuple[str, str], int] | None:
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return {(str(name), str(source)): int(n) for name, source, n in data["counts"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("KNOCK_LIMIT counts in %s cannot be read (%s): starting from none", path, exc)
        return None


def _write_private(path: Path, data: bytes) -> None:
    """``data`` to ``path`` (0600) in one step: a reader sees the old file or the new one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    try:
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
