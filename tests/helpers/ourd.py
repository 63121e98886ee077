"""Our fwknopd (the installed console script), run in a namespace with its own files.

Wait on what it logs: ``wait_log`` (with a ``mark()`` to skip what was
logged before, ``count`` for the n-th time), deadlines from
``tests/helpers/wait.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .netns import Netns, stop_process
from .wait import DEADLINE, START, LogFile, LoggingDaemon, wait_for

FWKNOPD = str(Path(sys.executable).parent / "fwknopd")


def write_private(path: Path, text: str) -> Path:
    """Write a config file as fwknopd wants it: mode 0600, from the first byte (keys, passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)  # a file that was there keeps its mode through O_CREAT
        out.write(text)
    return path


class OurFwknopd(LoggingDaemon):
    """One foreground ``fwknopd`` of ours in ``ns``."""

    def __init__(
        self,
        ns: Netns,
        workdir: Path,
        *,
        interface: str,
        access_conf: str,
        conf_extra: str = "",
        firewall: str | None = "nftables",
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.ns = ns
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "fwknopd.conf"
        self.access = self.dir / "access.conf"
        self.logfile = self.dir / "fwknopd.log"
        self.logs = LogFile(self.logfile)
        firewall_line = f"FIREWALL_TYPE {firewall}\n" if firewall else ""
        write_private(
            self.conf,
            f"PCAP_INTF {interface}\nFWKNOP_RUN_DIR {self.dir}/run\n{firewall_line}{conf_extra}",
        )
        write_private(self.access, access_conf)
        self.args = list(args)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def on_files(
        cls, ns: Netns, workdir: Path, conf: Path, access: Path, args: Sequence[str] = ()
    ) -> OurFwknopd:
        """Ours on existing files (say, the ones the C fwknopd just used), unchanged."""
        daemon = cls.__new__(cls)
        daemon.ns, daemon.dir, daemon.conf, daemon.access = ns, workdir, conf, access
        workdir.mkdir(parents=True, exist_ok=True)
        daemon.logfile = workdir / "ours.log"
        daemon.logs = LogFile(daemon.logfile)
        daemon.args, daemon.env, daemon.proc = list(args), None, None
        return daemon

    def command(self, *extra: str) -> list[str]:
        """The command line, for tests that run fwknopd's actions (-K, --fw-list ...)."""
        return [FWKNOPD, "-c", str(self.conf), "-a", str(self.access), *extra]

    def start(self, *, timeout: float = START, ready: str = "main event loop") -> OurFwknopd:
        """Start it (foreground) and wait until it says ``ready``."""
        offset = self.logs.mark()
        log = self.logfile.open("ab")
        env = {**os.environ, **(self.env or {})}
        self.proc = self.ns.popen(
            self.command("-f", *self.args), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        started = wait_for(
            lambda: ready in self.log()[offset:] or self.proc.poll() is not None, timeout=timeout
        )
        if not started or self.proc.poll() is not None:
            raise RuntimeError(f"fwknopd did not start:\n{self.log()}")
        return self

    def run_once(self, *extra: str, timeout: float = 60) -> int:
        """Run to completion (``--pcap-file``, actions); its exit status, its output in the log."""
        with self.logfile.open("ab") as log:
            res = self.ns.run(self.command("-f", *self.args, *extra), check=False, timeout=timeout)
            log.write(res.stdout + res.stderr)
        return res.returncode

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to it, by PID."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int | None:
        """SIGTERM, wait; its exit status."""
        if self.proc is None:
            return None
        stop_process(self.proc)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=DEADLINE)


def nft_set(ns: Netns, name: str = "fwknop_in4") -> str:
    """Our set as nft lists it (empty string if it is not there)."""
    res = ns.run(["nft", "list", "set", "inet", "filter", name], check=False)
    return res.stdout.decode()
