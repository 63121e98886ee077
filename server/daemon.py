"""The running daemon: start, signals, reload, stop. The one place that wires the parts together.

What it wires: capture (``capture/``: a source, read as packets come by a
``Reader``), the dispatcher (``dispatch.py``: each packet decided by the
pure pipeline, each decision acted on), the firewall (``firewall/``, run
by its ``FirewallDriver``), the replay store (``replay/``), the command
runner (``cmdexec.py``) and the GnuPG workers (``gpgpool.py``), all from
settings loaded once (``settings.py``); when access.conf has knock-sequence
stanzas (or an SPA stanza asks for an OS), the knock listener beside SPA
capture (``capture/syn.py``, read into ``knocks.py``); the open sources and
their readers are ``listeners.py``'s, periodic tasks ``timers.py``'s. Signal
handlers only schedule work on the event loop.

Beside capture, while it runs: the status socket in the run directory
(``status.py``, for ``fwknopd --status --json``), the metrics endpoint if
``METRICS_LISTEN`` asks for one (``metrics.py``), and grant sharing with an
HA group if ``GRANT_SYNC_GROUP`` names one (``grantsync.py``).

SIGHUP re-reads both files; if they are valid the new policy replaces the
old one without touching open grants (capture is reopened if its settings
changed; settings read only at start are named for a restart), else the
old one stays and every problem is logged. SIGTERM and SIGINT stop capture,
close what the FLUSH_*_AT_EXIT settings say, and exit. SIGUSR1 logs the
counters.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from . import sdnotify, status
from .capture import Source
from .capture.frames import network_layer, parse_ip
from .capture.libpcap import read_file_filtered
from .capture.tcpserver import tcp_server
from .cmdexec import CommandExecutor
from .config import Reload, ServerConfig
from .dispatch import Dispatcher
from .errors import ConfigError
from .firewall import Firewall, make_firewall
from .firewall.driver import FirewallDriver
from .gpgpool import GpgPool
from .grantsync import GrantSync
from .knocks import Knocks
from .listeners import Listeners
from .metrics import Metrics, on_loop
from .nathost import forwarding_problem
from .processor import Processor
from .ratelog import RateLimitedLog
from .replay import open_store
from .settings import Options, ServerSettings, load
from .timers import every

__all__ = ["Daemon", "Options", "load"]

log = logging.getLogger("fwknop_server")
_PRUNE_EVERY = 60.0
_UNMUTE_EVERY = 1.0
_RESCAN_EVERY = 60.0
_KNOCK_EXPIRY_EVERY = 1.0


class Daemon:
    """One fwknopd run."""

    def __init__(
        self,
        options: Options,
        settings: ServerSettings,
        *,
        firewall: Firewall | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.settings = settings
        self.clock = clock
        self.firewall = firewall or make_firewall(settings.config)
        self.replay = open_store(settings.replay)
        self.commands = CommandExecutor(timeout=settings.command_timeout)
        self.gpg = GpgPool()
        self.driver = FirewallDriver(self.firewall, clock, count=self._count)
        self.knocks = Knocks(
            settings.knock, self.driver, self.replay, clock=clock, test_mode=options.test_mode
        )
        # rebuilt once the firewall has started: only then does it know whether it can open
        # for IPv6 (an nftables "inet" table can, an "ip" table cannot)
        self.dispatch = Dispatcher(
            self._processor(),
            self.driver,
            self.commands,
            self.gpg,
            clock=clock,
            packet_limit=options.packet_limit,
            on_limit=lambda: self.stop(),  # noqa: PLW0108 - whatever stop is then
            on_capture_error=self._capture_failed,
        )
        self.knocks.refusals = self.dispatch.refusals  # one table of counters
        self.listeners = Listeners(self.dispatch, self.knocks, settings.knock)
        self._tcp: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.exit_status = 0
        self.started = time.time()
        self.sync: GrantSync | None = None  # sharing grants with the HA group
        self.metrics: Metrics | None = None
        self._status: asyncio.Server | None = None

    @property
    def config(self) -> ServerConfig:
        """fwknopd.conf as last loaded."""
        return self.settings.config

    @property
    def source(self) -> Source | None:
        """The SPA capture source, while one is open."""
        return self.listeners.source

    @property
    def processor(self) -> Processor:
        """The pipeline packets are decided with now."""
        return self.dispatch.processor

    @property
    def refusals(self) -> RateLimitedLog:
        """The counters, by reason."""
        return self.dispatch.refusals

    def _count(self, key: str) -> None:
        self.dispatch.refusals.count(key)

    def _processor(self) -> Processor:
        fw = self.firewall
        pipeline = self.settings.pipeline_for(
            ipv6=fw.supports_ipv6, nat=fw.supports_nat, nat_ipv6=fw.supports_nat_ipv6
        )
        self.knocks.ipv6 = self.firewall.supports_ipv6
        return Processor(
            self.settings.stanzas,
            pipeline,
            replay=self.replay,
            keyring=self.settings.x25519,
            syns=self.knocks.syns,
            os_db=self.settings.knock.os_db,
        )

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Put every part on ``loop`` (``run`` does it first; tests that decide packets too)."""
        self._loop = loop
        self.commands.start(loop)
        self.gpg.start(loop)
        self.driver.start(loop)
        self.dispatch.start(loop)

    # -- running -----------------------------------------------------------------

    async def run(self) -> int:
        """Start the firewall and capture, serve until told to stop, clean up."""
        loop = asyncio.get_running_loop()
        self.bind(loop)
        self._stop = asyncio.Event()
        for sig, handler in (
            (signal.SIGHUP, self.reload),
            (signal.SIGTERM, self.stop),
            (signal.SIGINT, self.stop),
            (signal.SIGUSR1, self.log_counters),
        ):
            loop.add_signal_handler(sig, handler)
        if not self.options.test_mode:
            await self.driver.call(self.firewall.start, self.clock())
            self.dispatch.use(self._processor())
            self.driver.schedule_expiry()
        problem = forwarding_problem(self.settings.nat, self.firewall.supports_nat,
                                     self.firewall.name)  # fmt: skip
        if problem is not None:
            log.warning("%s", problem)
        capture = self.settings.capture
        if not capture.udp_server:  # fwknopd's words, which scripts wait for
            if not capture.pcap_file:
                log.info("Sniffing interface: %s", capture.interface)
            log.info("PCAP filter is: '%s'", capture.bpf_filter)
        if capture.pcap_file:
            path = Path(capture.pcap_file)
            await self._read_file(path, capture.bpf_filter)
            if not (self.options.exit_after_file or self._stop.is_set()):
                # as fwknopd: what the file opened stays open until it expires, on time
                log.info("%s read: serving its grants until they expire (SIGTERM stops)", path)
                self._serve(f"capture file {path} read", live=False)
                await self._stop.wait()
        else:
            source = self.listeners.open_spa(loop, capture)
            self.listeners.open_knocks(self.settings.knock)
            if capture.tcp_server:
                self._tcp = await tcp_server(capture.tcp_port)
            log.info(
                "Starting fwknopd main event loop: %s, firewall %s",
                source.description,
                self.firewall.name,
            )
            await self._start_reports(loop)
            self._serve(source.description)
            await self._stop.wait()
        await self._shutdown()
        return self.exit_status

    async def _start_reports(self, loop: asyncio.AbstractEventLoop) -> None:
        """The status socket; metrics and grant sharing where fwknopd.conf asks for them."""
        try:
            self._status = await status.serve(status.socket_path(self.settings.run_dir),
                                              self.status)  # fmt: skip
        except OSError as exc:
            log.error("no status socket (fwknopd --status --json will not answer): %s", exc)
        if self.settings.metrics_listen is not None:
            self.metrics = Metrics(on_loop(loop, self.status))
            self.driver.on_opened = self.metrics.opened
            try:
                self.metrics.serve(*self.settings.metrics_listen)
            except OSError as exc:  # knocks matter more than metrics: serve on without them
                log.error("metrics endpoint %s:%d: %s", *self.settings.metrics_listen, exc)
        if self.settings.sync is not None and not self.options.test_mode:
            self.sync = GrantSync(self.settings.sync, self.dispatch.apply_shared)
            self.dispatch.on_grant = self.sync.publish
            self.sync.start(loop)

    def status(self) -> dict[str, object]:
        """The daemon's counters and state (``--status --json``, metrics), on the loop."""
        return status.snapshot(self, started=self.started)

    def _serve(self, what: str, *, live: bool = True) -> None:
        """Ready: the timers of a running daemon (replay cache, refusal logs, knocks, rules).

        ``live``: capture runs (not ``--pcap-file``, whose knocks were decided with the file).
        """
        sdnotify.notify(f"READY=1\nSTATUS={what}")
        self._every(_PRUNE_EVERY, self._prune, "replay cache pruning")
        self._every(_UNMUTE_EVERY, self.dispatch.unmute, "unmuting refusals")
        if live:
            self._every(_KNOCK_EXPIRY_EVERY, self.knocks.expire, "knock sequence expiry")
            self._every(_RESCAN_EVERY, self.knocks.refresh_addresses, "knock local addresses")
        if self.settings.rules_check:
            self._every(_RESCAN_EVERY, self.driver.housekeeping, "firewall housekeeping")

    async def _read_file(self, path: Path, bpf_filter: str) -> None:
        """``--pcap-file``: every packet of the file, decided and acted on.

        SPA packets (``PCAP_FILTER``) go to the pipeline at the daemon's time;
        knocks (the knock listener's filter) to the sequence collector at the
        file's times, and what is still waiting at the end is decided then.
        """
        log.info("reading packets from %s", path)
        knock_filter = self.settings.knock.capture_filter
        filters = [bpf_filter] if knock_filter is None else [bpf_filter, knock_filter]
        last = None
        for linktype, stamp, frame, matched in read_file_filtered(path, filters):
            inner = network_layer(linktype, frame)
            if inner is None:
                continue
            if matched[-1] and knock_filter is not None:
                self.knocks.feed(inner, stamp)
                last = stamp
            if matched[0] and (packet := parse_ip(inner)) is not None:
                self.dispatch.handle(packet, self.clock())
        if last is not None:
            longest = max((r.knock_interval for r in self.settings.knock.rules), default=0.0)
            self.knocks.finish(last + longest + 1)
        await self.gpg.drained()
        await self.driver.drain()

    def _capture_failed(self, exc: OSError) -> None:
        if self.settings.exit_at_intf_down:
            self.exit_status = 1
            self.stop()

    # -- timers ------------------------------------------------------------------

    def _every(self, seconds: float, fn: Callable[[], None], what: str) -> None:
        assert self._loop is not None  # noqa: S101 - only called while running
        every(self._loop, seconds, fn, what, lambda: bool(self._stop and not self._stop.is_set()))

    def _prune(self) -> None:
        if self.replay is not None:
            gone = self.replay.prune(self.clock())
            if gone:
                log.debug("replay cache: %d expired digests pruned", gone)

    # -- signals -----------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM/SIGINT: leave the loop."""
        if self._stop is not None and not self._stop.is_set():
            log.info("Got SIGTERM. Exiting...")
            sdnotify.notify("STOPPING=1")
            self._stop.set()

    def reload(self) -> None:
        """SIGHUP: swap in the new policy if it is valid; keep the old one (and say why) if not.

        However it ends, systemd hears READY=1 again (else the unit stays
        "reloading" and the next ``systemctl reload`` times out).
        """
        log.info("Got SIGHUP. Re-reading configs.")
        sdnotify.reloading()
        status = "reload refused: configuration has errors"
        try:
            status = self._reload()
        except Exception as exc:  # a reload that fails keeps the running configuration
            log.error("reload failed, keeping the running configuration: %s: %s",
                      type(exc).__name__, exc)  # fmt: skip
            status = "reload failed: running configuration kept"
        finally:
            sdnotify.notify(f"READY=1\nSTATUS={status}")

    def _reload(self) -> str:
        warnings: list[str] = []
        try:
            settings = load(self.options, warnings)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the running configuration: %s", problem)
            return "reload refused: configuration has errors"
        for warning in warnings:
            log.warning("%s", warning)
        old = self.config
        changed = old.changed(settings.config, Reload.RESTART)
        if changed:
            log.warning("settings changed (%s): restart fwknopd to apply them", ", ".join(changed))
        settings = replace(settings, capture=settings.capture.on_reload(self.settings.capture))
        if old.changed(settings.config, Reload.CAPTURE) and settings.capture.reopens:
            self.listeners.reopen_spa(settings.capture)
        self.settings = settings
        self.knocks.reconfigure(settings.knock)
        if self.source is not None:
            self.listeners.open_knocks(settings.knock, replace=True)
        self.dispatch.use(self._processor())
        self.commands.timeout = settings.command_timeout
        log.info(
            "configuration reloaded: %d access stanza(s); %d grant(s) stay open",
            len(settings.stanzas),
            len(self.firewall.open),
        )
        return "configuration reloaded"

    def log_counters(self) -> None:
        """SIGUSR1: the counters, by reason (and what the kernel dropped before we saw it)."""
        status.capture_drops(self.source, self.refusals)
        if dropped := self.listeners.knock_drops():
            self.refusals.count("knock_kernel_dropped", dropped)
        log.info("counters: %s", self.refusals.summary())
        if self.settings.knock.sequences:
            log.info("knock counters: %s", self.knocks.summary())

    async def _shutdown(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
        if self._status is not None:
            self._status.close()
            status.socket_path(self.settings.run_dir).unlink(missing_ok=True)
        if self.sync is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.sync.stop)
        if self.metrics is not None:
            self.metrics.stop()
        self.listeners.close()
        await self.driver.stop(close=not self.options.test_mode)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.gpg.shutdown)
        # pending cycle closes run now; running commands finish
        await loop.run_in_executor(None, self.commands.shutdown)
        if self.replay is not None:
            self.replay.close()
        self.log_counters()
        log.info("Shutting Down fwknopd.")
