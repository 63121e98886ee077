"""The ``fwknopd`` command: fwknopd 2.6.10's options, defaults and files.

Exit status: 0 success; 1 a configuration, firewall or run-time error
(``--exit-parse-config`` with problems, ``-S`` when nothing runs, ``-S --json``
when the daemon runs and does not answer); 2 a bad command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import logging
import logging.handlers
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fwknop_core import HmacType, UsageError, X25519PublicKey, generate_keys

from . import __version__
from .config import (
    DEFAULT_CONF,
    Overrides,
    ServerConfig,
    describe,
    load_server_config,
)
from .errors import ConfigError
from .hardening import no_core_dumps

if TYPE_CHECKING:
    from .knockstanza import SequenceStanza
    from .settings import Options, ServerSettings

__all__ = ["ExitCode", "main"]

log = logging.getLogger("fwknop_server")
_KILL_WAIT = 10.0
SYSLOG_SOCKET = "/dev/log"


class ExitCode(enum.IntEnum):
    """``fwknopd``'s exit status (API: scripts and unit files rely on it)."""

    OK = 0
    ERROR = 1
    USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fwknopd",
        description="Single Packet Authorization server, a drop-in for fwknopd 2.6: it reads "
        "fwknopd.conf and access.conf as they are.",
    )
    a = p.add_argument
    a("-V", "--version", action="version", version=f"fwknopd (fwknop-tui) {__version__}")
    a("-c", "--config-file", type=Path, default=DEFAULT_CONF, help="fwknopd.conf (%(default)s)")
    a("-a", "--access-file", type=Path, help="access.conf (default: ACCESS_FILE)")
    a("--access-folder", type=Path, help="read every *.conf file in this folder instead")
    a("-O", "--override-config", action="append", default=[], metavar="FILE[,FILE]",
      help="more config files, applied after fwknopd.conf")  # fmt: skip
    a("-f", "--foreground", action="store_true", help="stay in the foreground, log to stderr")
    a("-i", "--interface", help="interface to sniff (PCAP_INTF)")
    a("-P", "--pcap-filter", help="capture filter (PCAP_FILTER)")
    a(
        "--pcap-file",
        type=Path,
        help="read packets from a capture file, then serve its grants until they expire",
    )
    a(
        "--exit-after-pcap-file",
        action="store_true",
        help="with --pcap-file: exit once the file is read (FLUSH_*_AT_EXIT say what stays)",
    )
    a("--pcap-any-direction", action="store_true", help="also look at outgoing packets")
    a("-U", "--udp-server", action="store_true", help="receive SPA on a UDP socket, no sniffing")
    a("-n", "--nfq-capture", action="store_true",
      help="receive SPA from NFQUEUE (ENABLE_NFQ_CAPTURE), no sniffing")  # fmt: skip
    a("-d", "--digest-file", help="fwknopd's digest cache to import (DIGEST_FILE)")
    a("--rotate-digest-cache", action="store_true", help="start with an empty replay cache")
    a("-p", "--pid-file", help="PID file (FWKNOP_PID_FILE)")
    a("-r", "--run-dir", help="run directory (FWKNOP_RUN_DIR)")
    a("-C", "--packet-limit", type=int, default=0, metavar="N", help="exit after N packets")
    a("-t", "--test", action="store_true", help="decide and log, but never open anything")
    a("-v", "--verbose", action="count", default=0, help="more logging (repeatable)")
    a("--syslog-enable", action="store_true", help="in the foreground, log to syslog too")
    a("-l", "--locale", help="accepted for compatibility; we do not change the locale")
    a("--no-locale", action="store_true", help="accepted for compatibility (fwknop 1.x)")
    a("--fw-log", metavar="FILE", help="fwknop 1.x's iptables log input: not supported (see --os)")
    a("--gpg-home-dir", help="GPG_HOME_DIR")
    a("--gpg-exe", help="GPG_EXE")
    a("--sudo-exe", help="SUDO_EXE")
    a("--no-ipt-check-support", action="store_true", help="accepted for compatibility")
    a("--no-firewd-check-support", action="store_true", help="accepted for compatibility")
    actions = p.add_argument_group("actions (each runs and exits)")
    b = actions.add_argument
    b("-D", "--dump-config", action="store_true", help="print the effective configuration")
    b("--exit-parse-config", action="store_true", help="check both files, report every problem")
    b("--exit-parse-digest-cache", action="store_true", help="read the replay cache, report")
    b("-K", "--kill", action="store_true", help="stop the running fwknopd")
    b("-R", "--restart", action="store_true", help="make the running fwknopd re-read its files")
    b("-S", "--status", action="store_true", help="say whether fwknopd runs")
    a("--json", action="store_true",
      help="with -S: the running daemon's counters and state, as JSON")  # fmt: skip
    b("--fw-list", action="store_true", help="list what fwknopd has opened")
    b("--fw-list-all", action="store_true", help="list the whole firewall policy")
    b("--fw-flush", action="store_true", help="remove every rule fwknopd made")
    b("-o", "--os", action="store_true",
      help="print the OS fingerprint of each TCP SYN: from --pcap-file, or live on PCAP_INTF "
      "(until -C N SYNs or Ctrl-C)")  # fmt: skip
    b("-k", "--key-gen", action="store_true", help="print a new key pair")
    b("--key-gen-file", type=Path, metavar="FILE", help="write a new key pair to FILE (0600)")
    b("--dump-serv-err-codes", action="store_true", help="list why packets are refused")
    b("--key-len", type=int, default=32, help="Rijndael key length for --key-gen")
    b("--hmac-key-len", type=int, help="HMAC key length for --key-gen")
    b("--hmac-digest-type", default="sha256", help="HMAC type for --key-gen")
    b("--key-gen-server", nargs="?", const="", metavar="FILE",
      help="write a new x25519 server key pair to FILE (default /etc/fwknop/server_x25519.key, "
      "mode 0600) and print its public key for clients")  # fmt: skip
    return p


def _overrides(args: argparse.Namespace) -> Overrides:
    values: dict[str, str] = {}
    for flag, name in (
        ("interface", "PCAP_INTF"),
        ("pcap_filter", "PCAP_FILTER"),
        ("digest_file", "DIGEST_FILE"),
        ("pid_file", "FWKNOP_PID_FILE"),
        ("run_dir", "FWKNOP_RUN_DIR"),
        ("gpg_home_dir", "GPG_HOME_DIR"),
        ("gpg_exe", "GPG_EXE"),
        ("sudo_exe", "SUDO_EXE"),
    ):
        if (value := getattr(args, flag)) is not None:
            values[name] = value
    if args.pcap_file is not None:
        values["PCAP_FILE"] = str(args.pcap_file)
    if args.udp_server:
        values["ENABLE_UDP_SERVER"] = "Y"
    if args.nfq_capture:
        values["ENABLE_NFQ_CAPTURE"] = "Y"
    if args.pcap_any_direction:
        values["ENABLE_PCAP_ANY_DIRECTION"] = "Y"
    if args.access_folder is not None:
        values["ACCESS_FOLDER"] = str(args.access_folder)
    files = [Path(f) for item in args.override_config for f in item.split(",") if f]
    return Overrides(values=values, override_files=tuple(files))


def _options(args: argparse.Namespace) -> Options:
    from .settings import Options  # noqa: PLC0415 - not needed for -K/-S

    access: tuple[Path, ...] | None = None
    if args.access_folder is not None:
        access = (args.access_folder,)
    elif args.access_file is not None:
        access = (args.access_file,)
    return Options(
        config_file=args.config_file,
        overrides=_overrides(args),
        access_paths=access,
        test_mode=args.test,
        packet_limit=max(0, args.packet_limit),
        foreground=args.foreground,
        exit_after_file=args.exit_after_pcap_file,
    )


def _terminal_action(args: argparse.Namespace) -> bool:
    """An action a person runs at a terminal: fwknopd prints its messages there, not to syslog."""
    return bool(args.exit_parse_config or args.fw_list or args.fw_list_all or args.fw_flush
                or args.dump_config)  # fmt: skip


def _setup_logging(args: argparse.Namespace, config: ServerConfig | None) -> None:
    from .loglines import TRACE  # noqa: PLC0415 - only once logging is set up

    logging.addLevelName(TRACE, "TRACE")
    # -v: debugging; -v -v: fwknopd's packet dumps too
    level = TRACE if args.verbose > 1 else logging.DEBUG if args.verbose else logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    ident = (config.text("SYSLOG_IDENTITY") if config else None) or "fwknopd"
    stamped = f"%(asctime)s {ident}[%(process)d]: %(message)s"
    if getattr(args, "terminal", False):  # plain lines on the terminal, as fwknopd's
        root.addHandler(_stderr_handler("%(message)s"))
        return
    if args.foreground:
        journald = "JOURNAL_STREAM" in os.environ  # journald adds its own time stamps
        root.addHandler(_stderr_handler("%(message)s" if journald else stamped))
    if not args.foreground or args.syslog_enable:
        facility_name = (config.text("SYSLOG_FACILITY") if config else None) or "LOG_DAEMON"
        facility = getattr(logging.handlers.SysLogHandler, facility_name)
        syslog = _Syslog(SYSLOG_SOCKET, facility)
        if not syslog.connected:  # no syslog here (a container, a minimal host)
            syslog.close()
            _no_syslog("cannot be reached")
            if not args.foreground:
                root.addHandler(_stderr_handler(stamped))
            return
        syslog.ident = f"{ident}[{os.getpid()}]: "
        syslog.fallback.setFormatter(logging.Formatter(stamped))
        root.addHandler(syslog)


def _stderr_handler(fmt: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    return handler


def _no_syslog(why: str) -> None:
    """The one notice that messages go to stderr instead of syslog."""
    sys.stderr.write(f"fwknopd: syslog ({SYSLOG_SOCKET}) {why}: logging to stderr\n")
    sys.stderr.flush()


class _Syslog(logging.handlers.SysLogHandler):
    """Syslog that never prints Python's '--- Logging error ---' traceback.

    The standard handler connects when it is made and ignores a failure
    there, then prints a traceback for every message it cannot send. Here a
    handler that could not connect says so (``connected``: the caller then uses stderr),
    and a message that cannot be sent later (syslog went away) goes to stderr,
    after one notice.
    """

    def __init__(self, address: str, facility: int) -> None:
        self.fallback = _stderr_handler("%(message)s")
        self._told = False
        super().__init__(address, facility)
        sock: socket.socket | None = getattr(self, "socket", None)
        try:
            self.connected = sock is not None and bool(sock.getpeername())
        except OSError:  # the constructor's connect failed, and it ignored that
            self.connected = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """Send the record to stderr instead (the first time, say so)."""
        if not self._told:
            self._told = True
            _no_syslog("cannot be written to")
        self.fallback.handle(record)


def _fail(message: str) -> ExitCode:
    sys.stderr.write(f"fwknopd: {message}\n")
    return ExitCode.ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fwknopd``."""
    os.umask(0o077)
    no_core_dumps()  # before any key is read
    parser = _parser()
    args = parser.parse_args(argv)
    if args.fw_log is not None:
        from .legacy import FW_LOG_REFUSAL  # noqa: PLC0415

        sys.stderr.write(f"fwknopd: {FW_LOG_REFUSAL}\n")
        return ExitCode.USAGE
    if args.key_gen or args.key_gen_file is not None:
        return _key_gen(parser, args)
    if args.dump_serv_err_codes:
        return _dump_reasons()
    if args.key_gen_server is not None:
        from .serverkey import key_gen_server  # noqa: PLC0415 - only this action needs it

        return key_gen_server(args.key_gen_server, sys.stdout, sys.stderr)
    if args.exit_parse_config:
        return _exit_parse_config(args)
    warnings: list[str] = []  # fwknopd.conf's, for the firewall actions (serving loads anew)
    try:
        config = load_server_config(args.config_file, _overrides(args), warnings=warnings)
    except ConfigError as exc:
        return _fail(str(exc))
    pid_file = config.file("FWKNOP_PID_FILE")
    if args.status and args.json:
        return _status_json(pid_file, config.file("FWKNOP_RUN_DIR"))
    if args.kill or args.restart or args.status:
        return _control(args, pid_file)
    args.terminal = _terminal_action(args)
    _setup_logging(args, config)
    if args.rotate_digest_cache:
        _rotate(config)
    if args.exit_parse_digest_cache:
        return _parse_digest_cache(config)
    if args.fw_list or args.fw_list_all or args.fw_flush:
        for warning in warnings:
            log.warning("%s", warning)
        return _firewall_action(args, config)
    if args.os:
        return _os_mode(args, config)
    return _serve(args)


def _os_mode(args: argparse.Namespace, config: ServerConfig) -> int:
    from . import osmode  # noqa: PLC0415
    from .capture.libpcap import PcapError  # noqa: PLC0415
    from .knocks import load_os_database  # noqa: PLC0415

    try:
        database = load_os_database(config, required=False)
        osmode.run(
            database,
            sys.stdout,
            pcap_file=args.pcap_file,
            interface=config.required("PCAP_INTF"),
            limit=max(0, args.packet_limit),
        )
    except ConfigError as exc:
        return _fail(str(exc))
    except (OSError, PcapError) as exc:
        return _fail(str(exc))
    return ExitCode.OK


def _exit_parse_config(args: argparse.Namespace) -> int:
    """Check both files, print every warning and every problem to the terminal, as fwknopd.

    A bad fwknopd.conf does not stop the check: the access files it names
    (or ``-a``'s) are checked too (``settings.load``).
    """
    from .settings import load  # noqa: PLC0415

    warnings: list[str] = []
    try:
        settings = load(_options(args), warnings)
    except ConfigError as exc:
        problems: ConfigError | None = exc
    else:
        problems = None
    for warning in warnings:
        sys.stderr.write(f"{warning}\n")
    if problems is not None:
        return _fail(str(problems))
    sequences = settings.knock.sequences
    knock = f" and {len(sequences)} knock-sequence stanza(s)" if sequences else ""
    print(f"configuration is valid: {len(settings.stanzas)} access stanza(s){knock}")
    sys.stderr.write("Configs parsed, exiting.\n")  # fwknopd's words, on stderr as its
    return ExitCode.OK


def _key_gen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        keys = generate_keys(
            HmacType.from_name(args.hmac_digest_type),
            key_len=args.key_len,
            hmac_key_len=args.hmac_key_len,
        )
    except UsageError as exc:
        parser.error(str(exc))
    if args.key_gen_file is None:
        sys.stdout.write(keys.as_text())
        return ExitCode.OK
    from .serverkey import write_private  # noqa: PLC0415 - only this action needs it

    try:  # as fwknopd, an existing file is replaced
        write_private(args.key_gen_file, keys.as_text().encode("ascii"), replace=True)
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"Wrote Rijndael and HMAC keys to: {args.key_gen_file}")
    return ExitCode.OK


def _dump_reasons() -> int:
    """``--dump-serv-err-codes``: each reason a packet is refused for, by its counter name."""
    from .vocab import Reason  # noqa: PLC0415

    for reason in Reason:
        print(f"err code: {reason.key}, err string: '{reason.text}'")
    return ExitCode.OK


def _control(args: argparse.Namespace, pid_file: Path) -> int:
    from .pidfile import running_pid  # noqa: PLC0415

    pid = running_pid(pid_file)
    if args.status:
        if pid is None:
            print("No running fwknopd detected.")
            return ExitCode.ERROR
        print(f"Detected fwknopd is running (pid={pid}).")
        return ExitCode.OK
    if pid is None:
        return _fail(f"no running fwknopd (pid file {pid_file})")
    if args.restart:
        os.kill(pid, signal.SIGHUP)
        print(f"Sent restart signal to fwknopd (pid={pid}).")
        return ExitCode.OK
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _KILL_WAIT
    while time.monotonic() < deadline:
        if running_pid(pid_file) != pid:
            print(f"Killed fwknopd (pid={pid}).")
            return ExitCode.OK
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    print(f"Killed fwknopd (pid={pid}) with SIGKILL after {_KILL_WAIT:.0f} s.")
    return ExitCode.OK


def _status_json(pid_file: Path, run_dir: Path) -> int:
    """``-S --json``: what the running daemon says about itself, or that none runs (exit 1)."""
    import json  # noqa: PLC0415

    from .pidfile import running_pid  # noqa: PLC0415
    from .status import query, socket_path  # noqa: PLC0415

    pid = running_pid(pid_file)
    if pid is None:
        print(json.dumps({"running": False}))
        return ExitCode.ERROR
    try:
        answer = query(socket_path(run_dir))
    except (OSError, ValueError) as exc:  # stuck, or started without the socket
        print(json.dumps({"running": True, "pid": pid, "answering": False, "error": str(exc)}))
        return ExitCode.ERROR
    print(json.dumps({"running": True, "answering": True, **answer}, indent=1))
    return ExitCode.OK


def _rotate(config: ServerConfig) -> None:
    from .replay import ReplaySettings  # noqa: PLC0415
    from .replay.sqlite import rotate  # noqa: PLC0415

    settings = ReplaySettings.from_config(config)
    for path in (settings.path, settings.legacy_file):
        old = rotate(path) if path is not None else None
        if old is not None:
            log.info("replay cache %s moved to %s", path, old)


def _parse_digest_cache(config: ServerConfig) -> int:
    import dataclasses  # noqa: PLC0415

    from .replay import ReplaySettings, open_store  # noqa: PLC0415

    try:
        settings = ReplaySettings.from_config(config)
    except ConfigError as exc:
        return _fail(str(exc))
    store = open_store(dataclasses.replace(settings, enabled=True))
    assert store is not None  # noqa: S101 - enabled
    where = settings.url or settings.path
    print(f"{where}: {len(store)} digest(s) that could still be replayed")
    store.close()
    return ExitCode.OK


def _firewall_action(args: argparse.Namespace, config: ServerConfig) -> int:
    from .firewall import FirewallError, make_firewall  # noqa: PLC0415

    try:
        firewall = make_firewall(config)
        if args.fw_flush:
            firewall.flush()
            print(f"removed everything fwknopd made ({firewall.name})")
        elif args.fw_list_all:
            print(firewall.listing_all(), end="")
        else:
            print(firewall.listing())
    except FirewallError as exc:
        return _fail(str(exc))
    return ExitCode.OK


def _serve(args: argparse.Namespace) -> int:
    from .daemon import Daemon, load  # noqa: PLC0415
    from .firewall import FirewallError  # noqa: PLC0415
    from .pidfile import AlreadyRunning, PidFile  # noqa: PLC0415
    from .runfiles import check_run_dir  # noqa: PLC0415

    options = _options(args)
    warnings: list[str] = []
    try:
        settings = load(options, warnings)
    except ConfigError as exc:
        return _fail(str(exc))
    config = settings.config
    for warning in warnings:
        log.warning("%s", warning)
    if args.dump_config:
        print(dump_settings(settings))
        return ExitCode.OK
    if not args.foreground:
        _daemonize()
        _setup_logging(args, config)
    pid = PidFile(config.file("FWKNOP_PID_FILE"))
    try:
        check_run_dir(config.file("FWKNOP_RUN_DIR"))
        pid.acquire()
    except (AlreadyRunning, OSError) as exc:
        return _fail(str(exc))
    try:
        log.info("Starting fwknopd (fwknop-tui %s)", __version__)
        daemon = Daemon(options, settings)
        return asyncio.run(daemon.run())
    except (FirewallError, OSError) as exc:
        log.error("%s", exc)
        return ExitCode.ERROR
    finally:
        pid.release()


def dump_settings(settings: ServerSettings) -> str:
    """What ``-D`` prints: every fwknopd.conf setting, what is in effect, each stanza.

    Never a secret: keys by their length, a GnuPG passphrase not at all.
    """
    from .dump import describe_settings, describe_stanza  # noqa: PLC0415

    lines = [*describe(settings.config), describe_settings(settings)]
    ids: dict[X25519PublicKey, str] = {}
    if settings.x25519 is not None:  # public keys: what clients are given, nothing secret
        lines.append(f"{'x25519 server public key':<28}{settings.x25519.server.to_text()}")
        ids = {c.shared.client: c.shared.key_id_text for c in settings.x25519}
    lines += [describe_stanza(stanza, ids) for stanza in settings.stanzas]
    lines += [_describe_sequence(sequence) for sequence in settings.knock.sequences]
    return "\n".join(lines)


def _describe_sequence(stanza: SequenceStanza) -> str:
    """A knock-sequence stanza for ``-D`` (its key's length, never the key)."""
    from .knock import EncryptedRule  # noqa: PLC0415 - only -D needs it

    rule = stanza.rule
    lines = [
        f"\nstanza #{stanza.number} ({stanza.path}:{stanza.line}): {stanza.kind} knock sequence",
        f"  SOURCE                    {stanza.source_text}",
    ]
    if isinstance(rule, EncryptedRule):
        lines.append(f"  KEY                       <{len(rule.key.secret)} bytes>")
        lines.append(
            f"  PORT_OFFSET               {rule.offset} (ports {rule.offset}..{rule.offset + 255})"
        )
    else:
        lines.append(f"  SHARED_SEQUENCE           {', '.join(map(str, rule.steps))}")
    ports = ", ".join("icmp" if p == "icmp" else f"{p}/{n}" for p, n in sorted(rule.open_ports))
    lines.append(f"  OPEN_PORTS                {ports or '(what the sequence asks)'}")
    lines.append(f"  KNOCK_INTERVAL            {rule.knock_interval:g}")
    if rule.knock_limit is not None:
        lines.append(f"  KNOCK_LIMIT               {rule.knock_limit}")
    if rule.require_os is not None:
        lines.append(f"  OS                        {rule.require_os}")
    lines.append(f"  FW_ACCESS_TIMEOUT         {rule.fw_access_timeout}")
    return "\n".join(lines)


def _daemonize() -> None:
    """The classic double fork: no controlling terminal, / as cwd, stdio to /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
