"""From captured packets to what is done about them: decide each, then act on the decision.

The pipeline (``processor.py``) decides without I/O; this is where its
decisions meet the edges: a refusal is counted and logged at a bounded rate
(``ratelog.py``), and once past that rate muted, so the flood screen counts
its packets from then on, in capture itself; a grant goes to the firewall
(``firewall/driver.py``), a command or cycle to the command runner
(``cmdexec.py``), a GnuPG decryption to its worker pool (``gpgpool.py``),
a NAT host name to DNS on a worker thread (``nathost.py``).

Nothing in a packet can make any of this raise. Whatever a packet makes
raise, in the pipeline or in acting on its decision, is caught at the
packet boundary (one packet: the others of its batch are decided as usual)
and is a refusal like any other: counted as ``internal_error`` and logged
at the refusal rate, as one line naming the exception's type and where it
was raised, never a traceback (a packet that can raise can be sent a
thousand times a second) and never the exception's text (it may quote the
packet, or a key).

What it counts, for the counters (SIGUSR1), metrics and ``--status``: the
refusals by reason and other events (``refusals``), packets read
(``packets``), grants by stanza and origin (``grants``: made here, or
received from the HA group), and ``knocks``, knock sequences by outcome
(read from the knock listener's ``knock_*`` counters, which share
``refusals``). Counting is a dict update per batch or per grant: the flood
path pays nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from fwknop_core import InvalidPacket, X25519Opened

from .capture import Source
from .cmdexec import CommandExecutor
from .firewall.driver import FirewallDriver
from .gpgpool import GpgPool
from .loglines import TRACE, granted_lines, refusal_lines
from .nathost import resolve
from .processor import Processor
from .ratelog import RateLimitedLog
from .vocab import (
    MUTED,
    Accepted,
    Decision,
    Deferred,
    GpgOutcome,
    Grant,
    NatError,
    NatGrant,
    Packet,
    Reason,
    Refused,
    RunCommand,
    RunCycle,
)

__all__ = ["Dispatcher"]

log = logging.getLogger("fwknop_server")


class Dispatcher:
    """Decides packets with the current ``processor`` and acts on each decision."""

    def __init__(
        self,
        processor: Processor,
        firewall: FirewallDriver,
        commands: CommandExecutor,
        gpg: GpgPool,
        *,
        clock: Callable[[], float] = time.time,
        packet_limit: int = 0,
        on_limit: Callable[[], None] = lambda: None,
        on_capture_error: Callable[[OSError], None] = lambda _exc: None,
    ) -> None:
        self.processor = processor
        self.firewall = firewall
        self.commands = commands
        self.gpg = gpg
        self.clock = clock
        self.refusals = RateLimitedLog(logging.getLogger("fwknop_server.refused"))
        self.packet_limit = packet_limit  # -C: stop after this many candidate packets
        self._on_limit = on_limit
        self._on_capture_error = on_capture_error
        self._candidates = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.packets = 0  # read from capture (muted ones too)
        self.grants: dict[tuple[int, str], int] = {}  # (stanza, "local" | "group") -> grants
        self.on_grant: Callable[[Grant], None] | None = None  # shares a grant made here
        self._read_at: float | None = None  # when the batch being decided was read

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Act on ``loop`` (the daemon's event loop): DNS workers, GnuPG outcomes."""
        self._loop = loop

    def use(self, processor: Processor) -> None:
        """Decide with ``processor`` from now on (a reload); the old screen's counts are kept."""
        self.unmute()  # the muted refusals belong to the screen they came from
        self.processor = processor

    # -- reading ---------------------------------------------------------------------

    def read(self, source: Source) -> int:
        """Read and decide every packet waiting; how many there were (muted ones too)."""
        screen = self.processor.screen
        self._read_at = time.monotonic()
        try:
            # with -C every packet is decided one by one: capture mutes nothing
            packets = source.read(None if self.packet_limit else screen.check)
        except OSError as exc:
            log.error("capture failed: %s", exc)
            self._on_capture_error(exc)
            return 0
        except Exception as exc:  # a packet capture could not take apart: skipped, reading goes on
            self._internal_error(None, exc)
            return 1
        muted = self._take_counts()
        failures: list[Exception] | None = getattr(source, "failures", None)
        if failures:  # packets that made capture (or the screen in it) raise: each dropped
            for failure in failures:
                self._internal_error(None, failure)
            failures.clear()
        if packets:
            self.handle_all(packets, self.clock())
        self._read_at = None
        self.packets += len(packets) + muted
        return len(packets) + muted

    def handle_all(self, packets: list[Packet], now: float) -> None:
        """Decide a batch of packets; nothing in a packet can make this raise.

        A flood repeats one refusal (the screen hands back the same object
        for the same verdict): once it is over its log rate, the screen
        counts the rest of its packets (``MUTED``), here and in capture.
        """
        if self.packet_limit:
            for packet in packets:
                self._handle(packet, now)  # counted by read() already
            return
        process, refusals, screen = self.processor.process, self.refusals, self.processor.screen
        for packet in packets:
            try:  # the packet boundary: what one packet raises stops that packet only
                decision = process(packet, now)
                if decision is MUTED:  # past its log rate: the screen counted it
                    continue
                if isinstance(decision, Refused):
                    if refusals.admit(decision.reason.key):  # format only what gets logged
                        self._log_refusal(decision, packet)
                    else:
                        screen.mute(decision)  # from now on, the screen counts such packets
                else:
                    self._act(decision, packet, now)
            except Exception as exc:
                self._internal_error(packet, exc)
        self._take_counts()

    def handle(self, packet: Packet, now: float) -> None:
        """Decide one packet and act on it; nothing in a packet can make this raise."""
        self.packets += 1
        self._handle(packet, now)

    def _handle(self, packet: Packet, now: float) -> None:
        try:  # the packet boundary
            decision = self.processor.process(packet, now)
            self._act(decision, packet, now)
        except Exception as exc:
            self._internal_error(packet, exc)
            return
        limit = self.packet_limit
        # what -C counts: every packet with a payload that reached the pipeline
        if limit and not (isinstance(decision, Refused) and decision.silent):
            self._candidates += 1
            if self._candidates >= limit:
                log.info("* Incoming packet count limit of %d reached", limit)
                log.info("Packet count limit (%d) reached. Exiting...", limit)
                self._on_limit()

    # -- acting on decisions ---------------------------------------------------------

    def _act(self, decision: Decision, packet: Packet, now: float) -> None:
        if isinstance(decision, Refused):
            if self.refusals.admit(decision.reason.key):  # format only what gets logged
                self._log_refusal(decision, packet)
        elif isinstance(decision, Deferred):
            self._defer(decision)
        elif isinstance(decision, Accepted):
            self._log_taken(decision, packet)
            self._grant(decision, packet, now)
        elif isinstance(decision, RunCommand):  # on a worker thread, never here
            self._log_taken(decision, packet)
            self.refusals.count("test_mode" if decision.test_only else "command")
            self.commands.run(decision)
        elif isinstance(decision, RunCycle):
            self._log_taken(decision, packet)
            self.refusals.count("cycle")
            self.commands.cycle(decision)

    def _defer(self, deferred: Deferred) -> None:
        """A GnuPG decryption for the worker pool; refused at once when its queue is full."""
        if not self.gpg.submit(deferred, self._gpg_done):
            self._act(Refused(Reason.GPG_BUSY), deferred.packet, self.clock())

    def _gpg_done(self, deferred: Deferred, outcome: GpgOutcome | Exception) -> None:
        """On the loop: a GnuPG job is done; the pipeline goes on from there."""
        packet = deferred.packet
        try:  # the packet boundary, for the rest of a GnuPG packet's way
            if isinstance(outcome, Exception) and not isinstance(outcome, InvalidPacket):
                raise outcome
            self._act(deferred.resume(outcome), packet, self.clock())
        except Exception as exc:
            self._internal_error(packet, exc)

    def _grant(self, decision: Accepted, packet: Packet, now: float) -> None:
        grant = decision.grant
        ports = ",".join(f"{p}/{n}" for p, n in grant.ports)
        if decision.test_only:
            self.refusals.count("test_mode")
            log.info(  # fwknopd's words, then ours: what it would have opened
                "[%s] (stanza #%d) --test mode enabled, skipping firewall manipulation.",
                packet.src,
                grant.stanza,
            )
            log.info(
                "SPA packet from %s (user %s, stanza #%d): --test mode, not opening %s for %s",
                packet.src,
                grant.username,
                grant.stanza,
                ports,
                grant.source,
            )
            return
        if grant.nat is not None and grant.nat.address is None:
            self._resolve_nat(decision, packet, now)  # and back here once it is resolved
            return
        self.refusals.count("granted")
        self._count_grant(grant.stanza, "local")
        # an in-process backend opens before anything else is done, logging too
        if self.firewall.grant(grant, now, since=self._read_at):
            opened = decision.opened
            key_id = opened.key_id if isinstance(opened, X25519Opened) else None
            _log_grant(grant, packet, ports, key_id)
        if self.on_grant is not None:
            self.on_grant(grant)  # to the HA group (never blocks)

    def apply_shared(self, grant: Grant, member: str) -> None:
        """A grant another member of the HA group made: opened here as it is, until it expires.

        Not shared again (only grants made here are), and counted apart.
        """
        now = self.clock()
        left = int(grant.expires - now)
        if left <= 0:
            return
        grant = dataclasses.replace(grant, timeout=left)
        if grant.source.version == 6 and not self.firewall.firewall.supports_ipv6:
            log.warning("grant from %s for %s not applied: %s cannot open for IPv6",
                        member, grant.source, self.firewall.firewall.name)  # fmt: skip
            return
        self.refusals.count("granted_group")
        self._count_grant(grant.stanza, "group")
        if self.firewall.grant(grant, now):
            log.info(
                "grant shared by %s (its stanza #%d, user %s): opening %s for %s for %d s",
                member, grant.stanza, grant.username,
                ",".join(f"{p}/{n}" for p, n in grant.ports), grant.source, left,
            )  # fmt: skip

    def _count_grant(self, stanza: int, origin: str) -> None:
        key = (stanza, origin)
        self.grants[key] = self.grants.get(key, 0) + 1

    @property
    def knocks(self) -> dict[str, int]:
        """Knock sequences by outcome (``granted_encrypted``, ``replay`` ...), from the counters."""
        return {
            name.removeprefix("knock_"): n
            for name, n in self.refusals.counts.items()
            if name.startswith("knock_") and name != "knock_kernel_dropped"  # not a sequence
        }

    def _resolve_nat(self, decision: Accepted, packet: Packet, now: float) -> None:
        """A NAT host name (ENABLE_NAT_DNS): looked up on a worker, never on the loop."""
        assert self._loop is not None and decision.grant.nat is not None  # noqa: S101
        nat = decision.grant.nat

        def done(future: asyncio.Future[NatGrant]) -> None:
            try:  # the packet boundary, for the rest of its way
                resolved(future)
            except Exception as exc:
                self._internal_error(packet, exc)

        def resolved(future: asyncio.Future[NatGrant]) -> None:
            exc = future.exception()
            if exc is not None:
                why = str(exc) if isinstance(exc, NatError) else f"{type(exc).__name__}: {exc}"
                log.warning("refused SPA packet from %s (stanza #%d): %s",
                            packet.src, decision.grant.stanza, why)  # fmt: skip
                self.refusals.count("nat_host")
                return
            resolved = dataclasses.replace(decision.grant, nat=future.result())
            log.info("Resolved NAT IP in SPA message: %s is %s", nat.host,
                     future.result().address)  # fmt: skip
            self._grant(dataclasses.replace(decision, grant=resolved), packet, now)

        version = decision.grant.source.version
        self._loop.run_in_executor(None, resolve, nat, version).add_done_callback(done)

    # -- counting ----------------------------------------------------------------------

    def _take_counts(self) -> int:
        """The packets the screen counted as muted, into the counters; how many."""
        total = 0
        for refused, n in self.processor.screen.counts():
            self.refusals.hold(refused.reason.key, n)
            total += n
        return total

    def unmute(self) -> None:
        """Every refusal's packets come through again (and may be logged, in a new window)."""
        for refused, n in self.processor.screen.release():
            self.refusals.hold(refused.reason.key, n)

    def _internal_error(self, packet: Packet | None, exc: BaseException) -> None:
        """What a packet made raise: a refusal, counted and logged at the rate as one line."""
        reason = Reason.INTERNAL
        if not self.refusals.admit(reason.key, logging.ERROR):
            return
        refused = Refused(reason, _raised_at(exc))
        if packet is None:  # capture could not take it apart
            log.error("refused SPA packet from a captured frame: %s: %s", reason.text,
                      refused.detail)  # fmt: skip
            return
        for _level, line in refusal_lines(refused, packet):  # our verdict line, as an error
            log.error("%s", line)

    def _log_refusal(self, decision: Refused, packet: Packet) -> None:
        for level, line in refusal_lines(decision, packet, trace=log.isEnabledFor(TRACE)):
            log.log(level, "%s", line)

    @staticmethod
    def _log_taken(decision: Accepted | RunCommand | RunCycle, packet: Packet) -> None:
        """fwknopd's lines for a packet a stanza takes (and the stanzas before it refused)."""
        opened = decision.opened if isinstance(decision, Accepted) else None
        stanza = decision.grant.stanza if isinstance(decision, Accepted) else decision.stanza
        lines = granted_lines(
            packet, decision.attempts, stanza, opened, trace=log.isEnabledFor(TRACE)
        )
        for level, line in lines:
            log.log(level, "%s", line)


def _raised_at(exc: BaseException) -> str:
    """``KeyError in _policy (processor.py:321)``: the type and the innermost frame, no text."""
    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames:
        return type(exc).__name__
    frame, line = frames[-1]
    code = frame.f_code
    return f"{type(exc).__name__} in {code.co_name} ({Path(code.co_filename).name}:{line})"


def _log_grant(grant: Grant, packet: Packet, ports: str, key_id: str | None) -> None:
    # an x25519 packet names its client's key (not secret): which of a rotation's keys is in use
    via = f", x25519 key id {key_id}" if key_id else ""
    nat, how = grant.nat, ""
    if nat is not None and nat.local:
        how = f", local NAT to {nat.target}:{nat.nat_port}"
    elif nat is not None and not nat.forward_all:
        how = f", forwarded to {nat.target}:{nat.nat_port}"
    elif nat is not None:
        how = f", forwarding all (DNAT to {nat.target})" if nat.dnat else ", forwarding all"
    log.info(
        "SPA packet from %s (user %s, stanza #%d%s): opening %s for %s for %d s%s",
        packet.src,
        grant.username,
        grant.stanza,
        via,
        ports,
        grant.source,
        grant.timeout,
        how,
    )
