"""The running daemon: the one place that wires configuration, capture, processor and firewall.

Event-driven on asyncio: the event loop wakes when capture has packets (no
sleep-and-poll loop) and hands them to the pure processor. While packets
keep coming it reads on a 1 ms timer instead, as the kernel's NAPI does
with interrupts: on a virtual machine a wakeup costs more than deciding a
packet, so a flood is read in batches, and the first quiet read goes back
to waking on arrival, so a lone knock is read at once (a longer pause
saves little more here: what a packet costs when it comes after an idle
moment, with cold caches, is what remains). Refusals past their log rate
are counted by capture itself (``Skip``): under a flood most packets never
become a ``Packet``.

Grants go to the firewall where its calls belong: an in-process backend
(libnftables) is called on the loop, so the rule is in place before the
packet is even logged; one that runs commands (iptables) on a worker
thread, so a slow command never holds up the packet path. Expiry runs on
timers set for the moment the next grant is due. Signal handlers only
schedule work on the loop.

SIGHUP re-reads both files; if they are valid the new policy replaces the
old one without touching open grants, else the old one stays and every
problem is logged. SIGTERM and SIGINT stop capture, close what the
FLUSH_*_AT_EXIT settings say, and exit. SIGUSR1 logs the counters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fwknop_core import InvalidPacket

from . import sdnotify
from .access import AccessStanza, load_access
from .capture.frames import Check
from .capture.sources import SniffSource, UdpSource, read_pcap_file
from .cmdexec import DEFAULT_TIMEOUT, CommandExecutor
from .config import Overrides, ServerConfig, load_server_config
from .errors import ConfigError
from .firewall import Firewall, FirewallError, Opening, make_firewall
from .gpgpool import GpgPool
from .nat import NatSettings, nat_settings
from .nathost import forwarding_problem, resolve
from .processor import Processor, Settings
from .ratelog import RateLimitedLog
from .replay import ReplayCache
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
    proto_name,
)

__all__ = ["Daemon", "Options", "load"]

log = logging.getLogger("fwknop_server")
_PRUNE_EVERY = 60.0
_UNMUTE_EVERY = 1.0
_MUTED_MAX = 64
_POLL_PAUSE = 0.001  # seconds between reads while packets come (adds at most this to a grant)
_BUSY = 512  # packets in one read that mean a backlog: read again without a pause
_RESCAN_EVERY = 60.0
_CAPTURE_KEYS = (
    "ENABLE_UDP_SERVER", "UDPSERV_PORT", "PCAP_INTF", "PCAP_FILTER", "ENABLE_PCAP_PROMISC",
    "ENABLE_PCAP_ANY_DIRECTION", "UDPSERV_RCVBUF",
)  # fmt: skip
_RESTART_KEYS = ("FIREWALL_TYPE", "NFT_TABLE", "NFT_CHAIN", "FIREWALL_EXE", "IPT_INPUT_ACCESS",
                 "ENABLE_TCP_SERVER", "TCPSERV_PORT",
                 # the NAT chains, tables and maps are made at start
                 "ENABLE_IPT_FORWARDING", "ENABLE_IPT_LOCAL_NAT", "ENABLE_IPT_SNAT",
                 "ENABLE_DESTINATION_RULE", "IPT_FORWARD_ACCESS", "IPT_DNAT_ACCESS",
                 "IPT_SNAT_ACCESS", "IPT_MASQUERADE_ACCESS",
                 # the other backends' chains, anchor and rule numbers, also made at start
                 "ENABLE_IP6TABLES", "FIREWD_INPUT_ACCESS", "ENABLE_FIREWD_FORWARDING",
                 "ENABLE_FIREWD_LOCAL_NAT", "ENABLE_FIREWD_SNAT", "PF_ANCHOR_NAME",
                 "IPFW_START_RULE_NUM", "IPFW_MAX_RULES", "IPFW_ACTIVE_SET_NUM",
                 "IPFW_EXPIRE_SET_NUM", "IPFW_ADD_CHECK_STATE")  # fmt: skip
_TCP_MAX = 64  # connections the TCP server holds at a time
_TCP_HOLD = 1.0  # seconds it gives a client to send


class Source(Protocol):
    """A capture source: a file descriptor to wait on and a non-blocking read."""

    description: str

    def fileno(self) -> int: ...
    def read(self, check: Check | None = None) -> list[Packet]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Options:
    """What the command line decided."""

    config_file: Path
    overrides: Overrides = field(default_factory=Overrides)
    access_paths: tuple[Path, ...] | None = None  # -a / --access-folder
    test_mode: bool = False
    packet_limit: int = 0  # -C
    foreground: bool = True


def load(
    options: Options, warnings: list[str] | None = None
) -> tuple[ServerConfig, tuple[AccessStanza, ...]]:
    """Both files, validated; ``ConfigError`` with every problem."""
    config = load_server_config(options.config_file, options.overrides, warnings=warnings)
    if options.access_paths is not None:
        paths: tuple[Path, ...] = options.access_paths
    elif config.text("ACCESS_FOLDER"):
        paths = (config.file("ACCESS_FOLDER"),)
    else:
        paths = (config.file("ACCESS_FILE"),)
    stanzas = load_access(
        paths,
        gpg_home_dir=config.required("GPG_HOME_DIR"),
        gpg_exe=config.required("GPG_EXE"),
        warnings=warnings,
        nat_enabled=nat_settings(config).enabled,
    )
    return config, stanzas


def settings_for(config: ServerConfig, firewall: Firewall | None, test_mode: bool) -> Settings:
    """The processor's view of fwknopd.conf."""
    aging = config.flag("ENABLE_SPA_PACKET_AGING") and not (
        config.text("PCAP_FILE") and "ENABLE_SPA_PACKET_AGING" not in config.origins
    )
    # NAT requests are taken only where the firewall can serve them
    nat_capable = firewall is not None and firewall.supports_nat
    return Settings(
        max_age=config.number("MAX_SPA_PACKET_AGE") if aging else None,
        http=config.flag("ENABLE_SPA_OVER_HTTP"),
        x_forwarded_for=config.flag("ENABLE_X_FORWARDED_FOR"),
        destination_rule=config.flag("ENABLE_DESTINATION_RULE"),
        test_mode=test_mode,
        ipv6_grants=firewall is not None and firewall.supports_ipv6,
        sudo_exe=config.required("SUDO_EXE"),
        nat=nat_settings(config) if nat_capable else NatSettings(),
    )


def command_timeout(config: ServerConfig) -> float:
    """Seconds a command may run: ``CMD_EXEC_TIMEOUT``, else our default."""
    if config.text("CMD_EXEC_TIMEOUT") is None:
        return DEFAULT_TIMEOUT
    return float(config.number("CMD_EXEC_TIMEOUT"))


def open_source(config: ServerConfig) -> Source:
    """The capture the configuration asks for: the UDP server, or sniffing."""
    rcvbuf = config.number("UDPSERV_RCVBUF")
    if config.udp_server:
        return UdpSource(config.number("UDPSERV_PORT"), rcvbuf=rcvbuf)
    return SniffSource(
        config.required("PCAP_INTF"),
        config.required("PCAP_FILTER"),
        promiscuous=config.flag("ENABLE_PCAP_PROMISC"),
        any_direction=config.flag("ENABLE_PCAP_ANY_DIRECTION"),
        rcvbuf=rcvbuf,
    )


class Daemon:
    """One fwknopd run."""

    def __init__(
        self,
        options: Options,
        config: ServerConfig,
        stanzas: tuple[AccessStanza, ...],
        *,
        firewall: Firewall | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.config = config
        self.clock = clock
        self.firewall = firewall or make_firewall(config)
        self.refusals = RateLimitedLog(logging.getLogger("fwknop_server.refused"))
        self.replay: ReplayCache | None = None
        if config.flag("ENABLE_DIGEST_PERSISTENCE") and not options.test_mode:
            max_age = settings_for(config, None, False).max_age
            legacy = config.file("DIGEST_FILE")
            self.replay = ReplayCache(
                config.file("REPLAY_DB_FILE"),
                max_age=max_age,
                legacy_file=legacy if legacy.exists() else None,
            )
        self.stanzas = stanzas
        # rebuilt once the firewall has started: only then does it know whether it can open
        # for IPv6 (an nftables "inet" table can, an "ip" table cannot)
        self.processor = self._processor(config, stanzas)
        self.source: Source | None = None
        self.commands = CommandExecutor(timeout=command_timeout(config))
        self.gpg = GpgPool()
        self._tcp: asyncio.Server | None = None
        self._fw = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="firewall")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at: float | None = None
        self._candidates = 0
        self._packet_limit = options.packet_limit
        self.exit_status = 0
        self.granted = 0

    def _processor(self, config: ServerConfig, stanzas: tuple[AccessStanza, ...]) -> Processor:
        return Processor(
            stanzas,
            settings_for(config, self.firewall, self.options.test_mode),
            replay=self.replay,
        )

    # -- running -----------------------------------------------------------------

    async def run(self) -> int:
        """Start the firewall and capture, serve until told to stop, clean up."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        self.commands.start(loop)
        self.gpg.start(loop)
        for sig, handler in (
            (signal.SIGHUP, self.reload),
            (signal.SIGTERM, self.stop),
            (signal.SIGINT, self.stop),
            (signal.SIGUSR1, self.log_counters),
        ):
            loop.add_signal_handler(sig, handler)
        if not self.options.test_mode:
            await self._on_firewall(self.firewall.start, self.clock())
            self._unmute()  # the muted refusals belong to the screen they came from
            self.processor = self._processor(self.config, self.stanzas)
            self._schedule_expiry()
        problem = forwarding_problem(
            nat_settings(self.config), self.firewall.supports_nat, self.firewall.name
        )
        if problem is not None:
            log.warning("%s", problem)
        pcap_file = self.config.text("PCAP_FILE")
        if pcap_file:
            await self._replay_file(Path(pcap_file))
        else:
            self.source = open_source(self.config)
            if self.config.flag("ENABLE_TCP_SERVER") and not self.config.udp_server:
                self._tcp = await self._tcp_server(self.config.number("TCPSERV_PORT"))
            loop.add_reader(self.source.fileno(), self._on_readable)
            log.info(
                "Starting fwknopd main event loop: %s, firewall %s",
                self.source.description,
                self.firewall.name,
            )
            sdnotify.notify(f"READY=1\nSTATUS={self.source.description}")
            self._every(_PRUNE_EVERY, self._prune)
            self._every(_UNMUTE_EVERY, self._unmute)
            if self.config.number("RULES_CHECK_THRESHOLD") > 0:
                self._every(_RESCAN_EVERY, self._housekeeping)
            await self._stop.wait()
        await self._shutdown()
        return self.exit_status

    async def _tcp_server(self, port: int) -> asyncio.Server:
        """fwknopd's TCP server (``ENABLE_TCP_SERVER``): lets ``-P tcp`` clients connect.

        As fwknopd's: accept, give the client a second to send, close. What
        it sends is read by sniffing (``PCAP_FILTER`` must match it), not here,
        so this only drains and discards. Connections past ``_TCP_MAX`` at a
        time are closed at once.
        """
        active = 0

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal active
            active += 1
            try:
                if active <= _TCP_MAX:
                    async with asyncio.timeout(_TCP_HOLD):
                        while await reader.read(4096):
                            pass
            except (TimeoutError, OSError):
                pass
            finally:
                active -= 1
                writer.close()

        server = await asyncio.start_server(hold, port=port, reuse_address=True)
        log.info("Kicking off TCP server to listen on port %d.", port)
        return server

    async def _replay_file(self, path: Path) -> None:
        log.info("reading packets from %s", path)
        for packet in read_pcap_file(path, self.config.text("PCAP_FILTER")):
            self.handle(packet, self.clock())
        await self.gpg.drained()
        await self._drain_firewall()

    async def _on_firewall(self, fn: Callable[..., object], *args: object) -> object:
        """Run a firewall call where the backend's calls run: here, or on the firewall thread."""
        if self.firewall.in_process:
            return fn(*args)
        assert self._loop is not None  # noqa: S101 - run() sets it first
        return await self._loop.run_in_executor(self._fw, fn, *args)

    async def _drain_firewall(self) -> None:
        await self._on_firewall(lambda: None)

    def _on_readable(self) -> None:
        """The capture woke us: read what is there, then read on a timer while packets come."""
        source = self.source
        assert source is not None and self._loop is not None  # noqa: S101 - only while open
        self._read(source)
        # packets are arriving: stop waking for each one (on this shared, virtual host a
        # wakeup costs more than deciding a packet) and read on a short timer instead, as the
        # kernel's NAPI does with interrupts; a lone knock still woke us at once. Also after
        # a wakeup that found nothing: the socket can stay readable (a frame the kernel
        # skipped in the ring, see ring.py), and waking again at once would spin.
        self._loop.remove_reader(source.fileno())
        self._loop.call_later(_POLL_PAUSE, self._poll, source)

    def _poll(self, source: Source) -> None:
        """Timer-driven reading during traffic; back to waking on arrival once it is quiet."""
        if self.source is not source or self._loop is None:
            return  # capture was reopened or closed meanwhile
        count = self._read(source)
        if count >= _BUSY:
            self._loop.call_soon(self._poll, source)  # a backlog: no pause
        elif count:
            self._loop.call_later(_POLL_PAUSE, self._poll, source)
        else:
            self._loop.add_reader(source.fileno(), self._on_readable)

    def _read(self, source: Source) -> int:
        """Read and decide every packet waiting; how many there were (counted ones too)."""
        screen = self.processor.screen
        try:
            packets = source.read(None if self._packet_limit else screen.check)
        except OSError as exc:
            log.error("capture failed: %s", exc)
            if self.config.flag("EXIT_AT_INTF_DOWN"):
                self.exit_status = 1
                self.stop()
            return 0
        except Exception:  # a packet capture could not take apart: skipped, reading goes on
            log.exception("internal error reading a packet")
            self.refusals.count("internal_error")
            return 1
        skipped = self._take_counts()
        if packets:
            try:
                self.handle_all(packets, self.clock())
            except Exception:  # a bug here must not stop capture: reading goes on
                log.exception("internal error handling %d packet(s)", len(packets))
        return len(packets) + skipped

    def handle_all(self, packets: list[Packet], now: float) -> None:
        """Decide a batch of packets; nothing in a packet can make this raise.

        A flood repeats one refusal (the screen hands back the same object
        for the same verdict): once it is over its log rate, the screen
        counts the rest of its packets (``MUTED``), here and in capture.
        """
        if self._packet_limit:
            for packet in packets:
                self.handle(packet, now)
            return
        process, refusals, screen = self.processor.process, self.refusals, self.processor.screen
        for packet in packets:
            try:
                decision = process(packet, now)
            except Exception:  # the processor must not raise for packets; never let one kill us
                self._internal_error(packet)
                continue
            if decision is MUTED:  # past its log rate: the screen counted it
                continue
            if isinstance(decision, Refused):
                if refusals.admit(decision.reason.key):  # format only what gets logged
                    self._log_refusal(decision, packet)
                else:
                    screen.mute(decision)  # from now on, the screen counts such packets
            elif isinstance(decision, Deferred):
                self._defer(decision)
            elif isinstance(decision, Accepted | RunCommand | RunCycle):
                self._accepted(decision, packet, now)
        self._take_counts()

    def _take_counts(self) -> int:
        """The packets the screen counted as muted, into the counters; how many."""
        total = 0
        for refused, n in self.processor.screen.counts():
            self.refusals.hold(refused.reason.key, n)
            total += n
        return total

    def _unmute(self) -> None:
        """Every refusal's packets come through again (and may be logged, in a new window)."""
        for refused, n in self.processor.screen.release():
            self.refusals.hold(refused.reason.key, n)

    def _internal_error(self, packet: Packet) -> None:
        log.exception("internal error on a packet from %s", packet.src)
        self.refusals.count("internal_error")

    def handle(self, packet: Packet, now: float) -> None:
        """Decide one packet and act on it; nothing in a packet can make this raise."""
        try:
            decision = self.processor.process(packet, now)
        except Exception:  # the processor must not raise for packets; never let one kill us
            self._internal_error(packet)
            return
        if isinstance(decision, Refused):
            if self.refusals.admit(decision.reason.key):  # format only what gets logged
                self._log_refusal(decision, packet)
        elif isinstance(decision, Deferred):
            self._defer(decision)
        elif isinstance(decision, Accepted | RunCommand | RunCycle):
            self._accepted(decision, packet, now)
        limit = self._packet_limit
        if limit and decision_is_candidate(decision):
            self._candidates += 1
            if self._candidates >= limit:
                log.info("packet limit (%d) reached", limit)
                self.stop()

    def _defer(self, deferred: Deferred) -> None:
        """A GnuPG decryption for the worker pool; refused at once when its queue is full."""
        if not self.gpg.submit(deferred, self._gpg_done):
            self._refuse(Refused(Reason.GPG_BUSY), deferred.packet)

    def _gpg_done(self, deferred: Deferred, outcome: GpgOutcome | Exception) -> None:
        """On the loop: a GnuPG job is done; the pipeline goes on from there."""
        packet = deferred.packet
        if isinstance(outcome, Exception) and not isinstance(outcome, InvalidPacket):
            log.error("internal error on a packet from %s: %s", packet.src, outcome)
            self.refusals.count("internal_error")
            return
        try:
            decision = deferred.resume(outcome)
        except Exception:  # the processor must not raise for packets; never let one kill us
            self._internal_error(packet)
            return
        if isinstance(decision, Refused):
            self._refuse(decision, packet)
        elif isinstance(decision, Deferred):
            self._defer(decision)
        elif isinstance(decision, Accepted | RunCommand | RunCycle):
            self._accepted(decision, packet, self.clock())

    def _refuse(self, decision: Refused, packet: Packet) -> None:
        if self.refusals.admit(decision.reason.key):  # format only what gets logged
            self._log_refusal(decision, packet)

    def _log_refusal(self, decision: Refused, packet: Packet) -> None:
        reason = decision.reason
        where = f" (stanza #{decision.stanza})" if decision.stanza else ""
        detail = f": {decision.detail}" if decision.detail else ""
        # fwknopd logs nothing for a packet of the wrong size; we do, but as information
        # (any stray datagram is one), rate-limited like every other refusal
        log.log(
            logging.INFO if decision.silent else logging.WARNING,
            "refused SPA packet from %s %s/%d%s: %s%s",
            packet.src, proto_name(packet.proto), packet.dport, where, reason.text, detail,
        )  # fmt: skip
        if len(decision.attempts) > 1:
            for number, why, text in decision.attempts:
                log.debug("  stanza #%d: %s%s", number, why.text, f": {text}" if text else "")

    def _accepted(
        self, decision: Accepted | RunCommand | RunCycle, packet: Packet, now: float
    ) -> None:
        if isinstance(decision, RunCommand):  # on a worker thread, never here
            self.refusals.count("test_mode" if decision.test_only else "command")
            self.commands.run(decision)
            return
        if isinstance(decision, RunCycle):
            self.refusals.count("cycle")
            self.commands.cycle(decision)
            return
        grant = decision.grant
        ports = ",".join(f"{p}/{n}" for p, n in grant.ports)
        if decision.test_only:
            self.refusals.count("test_mode")
            log.info(
                "(stanza #%d) SPA packet from %s for %s %s: --test mode, not opening",
                grant.stanza,
                packet.src,
                grant.source,
                ports,
            )
            return
        if grant.nat is not None and grant.nat.address is None:
            self._resolve_nat(decision, packet, now)  # and back here once it is resolved
            return
        self.granted += 1
        self.refusals.count("granted")
        decided = time.monotonic()
        if not self.firewall.in_process:
            future = self._fw.submit(self._grant, grant, now, decided)
            future.add_done_callback(self._granted)
            self._log_grant(grant, packet, ports)
            return
        # an in-process transaction (libnftables): quicker than a hop to the firewall
        # thread, and the rule is in place before anything else is done, logging too
        try:
            self.firewall.grant(grant, now)
        except Exception as exc:  # a failed grant must not stop capture
            log.error("firewall: %s", exc)
            return
        opened = time.monotonic()
        self._schedule_expiry()
        self._log_grant(grant, packet, ports)
        log.debug("firewall: %s opened %.2f ms after the decision", grant.source,
                  (opened - decided) * 1000)  # fmt: skip

    def _resolve_nat(self, decision: Accepted, packet: Packet, now: float) -> None:
        """A NAT host name (ENABLE_NAT_DNS): looked up on a worker, never on the loop."""
        assert self._loop is not None and decision.grant.nat is not None  # noqa: S101
        loop, nat = self._loop, decision.grant.nat

        def done(future: asyncio.Future[NatGrant]) -> None:
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
            self._accepted(dataclasses.replace(decision, grant=resolved), packet, now)

        loop.run_in_executor(None, resolve, nat).add_done_callback(done)

    def _log_grant(self, grant: Grant, packet: Packet, ports: str) -> None:
        nat, how = grant.nat, ""
        if nat is not None and nat.local:
            how = f", local NAT to {nat.target}:{nat.nat_port}"
        elif nat is not None and not nat.forward_all:
            how = f", forwarded to {nat.target}:{nat.nat_port}"
        elif nat is not None:
            how = f", forwarding all (DNAT to {nat.target})" if nat.dnat else ", forwarding all"
        log.info(
            "SPA packet from %s (user %s, stanza #%d): opening %s for %s for %d s%s",
            packet.src,
            grant.username,
            grant.stanza,
            ports,
            grant.source,
            grant.timeout,
            how,
        )

    def _grant(self, grant: Grant, now: float, decided: float) -> list[Opening]:
        """On the firewall thread: open, and say how long it took from the decision."""
        openings = self.firewall.grant(grant, now)
        log.debug(
            "firewall: %s opened %.2f ms after the decision",
            grant.source,
            (time.monotonic() - decided) * 1000,
        )
        return openings

    def _granted(self, future: concurrent.futures.Future[list[Opening]]) -> None:
        exc = future.exception()
        if exc is not None:
            log.error("firewall: %s", exc)
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule_expiry)

    # -- timers --------------------------------------------------------------------

    def _schedule_expiry(self) -> None:
        due = self.firewall.next_expiry()
        if due is None or (self._expiry_at is not None and self._expiry_at <= due):
            return
        if self._expiry is not None:
            self._expiry.cancel()
        assert self._loop is not None  # noqa: S101 - only called while running
        delay = max(0.0, due - self.clock())
        self._expiry_at = due
        self._expiry = self._loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        self._expiry_at = None
        if self.firewall.in_process:
            try:
                self.firewall.expire(self.clock())
            except FirewallError as exc:
                log.error("firewall: %s", exc)
            self._schedule_expiry()
            return
        future = self._fw.submit(self.firewall.expire, self.clock())
        future.add_done_callback(self._granted)

    def _every(self, seconds: float, fn: Callable[[], None]) -> None:
        assert self._loop is not None  # noqa: S101 - only called while running

        def tick() -> None:
            fn()
            if self._stop is not None and not self._stop.is_set():
                self._loop.call_later(seconds, tick)  # type: ignore[union-attr]

        self._loop.call_later(seconds, tick)

    def _prune(self) -> None:
        if self.replay is not None:
            gone = self.replay.prune(self.clock())
            if gone:
                log.debug("replay cache: %d expired digests pruned", gone)

    def _housekeeping(self) -> None:
        if self.firewall.in_process:
            try:
                self.firewall.housekeeping(self.clock())
            except FirewallError as exc:
                log.error("firewall: %s", exc)
            return
        self._fw.submit(self.firewall.housekeeping, self.clock())

    # -- signals -------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM/SIGINT: leave the loop."""
        if self._stop is not None and not self._stop.is_set():
            log.info("Got SIGTERM. Exiting...")
            sdnotify.notify("STOPPING=1")
            self._stop.set()

    def reload(self) -> None:
        """SIGHUP: swap in the new policy if it is valid; keep the old one (and say why) if not."""
        log.info("Got SIGHUP. Re-reading configs.")
        sdnotify.reloading()
        warnings: list[str] = []
        try:
            config, stanzas = load(self.options, warnings)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the running configuration: %s", problem)
            sdnotify.notify("READY=1\nSTATUS=reload refused: configuration has errors")
            return
        for warning in warnings:
            log.warning("%s", warning)
        changed = [k for k in _RESTART_KEYS if config.values[k] != self.config.values[k]]
        if changed:
            log.warning("settings changed (%s): restart fwknopd to apply them", ", ".join(changed))
        if any(config.values[k] != self.config.values[k] for k in _CAPTURE_KEYS):
            self._reopen_capture(config)
        self.config = config
        self.stanzas = stanzas
        self._unmute()
        self.processor = self._processor(config, stanzas)
        self.commands.timeout = command_timeout(config)
        log.info(
            "configuration reloaded: %d access stanza(s); %d grant(s) stay open",
            len(stanzas),
            len(self.firewall.open),
        )
        sdnotify.notify("READY=1\nSTATUS=configuration reloaded")

    def _reopen_capture(self, config: ServerConfig) -> None:
        if self.source is None or self._loop is None:
            return
        try:
            source = open_source(config)
        except OSError as exc:
            log.error("keeping the old capture: %s", exc)
            return
        self._loop.remove_reader(self.source.fileno())
        self.source.close()
        self.source = source
        self._loop.add_reader(source.fileno(), self._on_readable)
        log.info("capture is now %s", source.description)

    def log_counters(self) -> None:
        """SIGUSR1: the counters, by reason (and what the kernel dropped before we saw it)."""
        drops = getattr(self.source, "drops", None)
        if drops is not None and (dropped := drops()):
            counts = self.refusals.counts
            counts["kernel_dropped"] = counts.get("kernel_dropped", 0) + dropped
        log.info("counters: %s", self.refusals.summary())

    async def _shutdown(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
        if self.source is not None and self._loop is not None:
            self._loop.remove_reader(self.source.fileno())
            self.source.close()
            self.source = None
        if self._expiry is not None:
            self._expiry.cancel()
        if not self.options.test_mode:
            try:
                await self._on_firewall(self.firewall.stop)
            except FirewallError as exc:
                log.error("firewall at exit: %s", exc)
        self._fw.shutdown(wait=True)
        if self._loop is not None:
            await self._loop.run_in_executor(None, self.gpg.shutdown)
        if self._loop is not None:  # pending cycle closes run now; running commands finish
            await self._loop.run_in_executor(None, self.commands.shutdown)
        else:
            self.commands.shutdown()
        if self.replay is not None:
            self.replay.close()
        self.log_counters()
        log.info("Shutting Down fwknopd.")


def decision_is_candidate(decision: Decision) -> bool:
    """What ``-C`` counts: every packet with a payload that reached the pipeline."""
    return not (isinstance(decision, Refused) and decision.silent)
