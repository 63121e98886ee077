"""The real C fwknopd 2.6.10, run in a namespace with its own files.

Called by absolute path (``/usr/sbin/fwknopd``): our own ``fwknopd`` shadows
it inside the virtualenv.

It is a slow partner: it polls pcap in a sleep loop and runs several
``iptables`` processes per grant, one packet at a time. Wait on its log
(``wait_log``, ``wait_granted``, ``packets_seen`` as the progress of
``wait_for``). Its capture also drops packets that arrive while a backlog
waits: on a loaded machine it took 28 to 47 of 70 packets sent 20 ms apart,
and every one of them when they were fed a few at a time. So a test that
sends it many packets uses ``feed``, which sends only as fast as it takes
them; a queue built before the start may still be old: give it a
``MAX_SPA_PACKET_AGE`` to match.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .netns import Netns, NetPair, stop_process
from .wait import DEADLINE, START, LogFile, LoggingDaemon, wait_for

FWKNOPD = "/usr/sbin/fwknopd"
FWKNOP = "/usr/bin/fwknop"


def real_fwknop_missing() -> str | None:
    """Why the real fwknop binaries cannot be used, or None."""
    for path in (FWKNOPD, FWKNOP):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install fwknop-client fwknop-server)"
    return None


class RealFwknopd(LoggingDaemon):
    """One foreground C fwknopd in ``ns``, sniffing ``interface``."""

    def __init__(
        self, ns: Netns, workdir: Path, *, interface: str, access_conf: str, conf_extra: str = ""
    ) -> None:
        self.ns = ns
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "fwknopd.conf"
        self.access = self.dir / "access.conf"
        self.logfile = self.dir / "fwknopd.log"
        self.logs = LogFile(self.logfile)
        self._write(
            self.conf,
            (
                f"PCAP_INTF                   {interface};\n"
                f"FWKNOP_RUN_DIR              {self.dir};\n"
                f"FWKNOP_PID_FILE             {self.dir}/fwknopd.pid;\n"
                f"DIGEST_FILE                 {self.dir}/digest.cache;\n" + conf_extra
            ),
        )
        self._write(self.access, access_conf)
        self.proc: subprocess.Popen[bytes] | None = None
        self.fed: int | None = None  # packets sent through feed, counted from what it had taken

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)

    def start(self, *, timeout: float = START) -> RealFwknopd:
        """Start it and wait for its main loop (pcap is open and filtered by then)."""
        log = self.logfile.open("wb")
        self.proc = self.ns.popen(
            [FWKNOPD, "-c", str(self.conf), "-a", str(self.access), "-f", "-v", "-v"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if not wait_for(
            lambda: "main event loop" in self.log() or self.proc.poll() is not None, timeout=timeout
        ):
            raise RuntimeError(f"fwknopd did not start:\n{self.log()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"fwknopd exited {self.proc.returncode}:\n{self.log()}")
        return self

    def wait_granted(self, *ports: int, proto: str = "tcp", timeout: float = DEADLINE) -> bool:
        """Wait until it has logged a rule for each of ``ports`` (logged once the rule is in).

        The deadline counts from the last packet it took: a queue of packets
        ahead of these is waited for as long as it works through it.
        """
        wanted = [f"{proto}/{port}, expires at" for port in ports]
        return wait_for(
            lambda: all(w in self.log() for w in wanted),
            timeout=timeout,
            interval=0.2,
            progress=self.packets_seen,
        )

    def packets_seen(self) -> int:
        """Packets it has taken to its first stanza (every stanza of our tests matches ANY)."""
        return self.logs.count("(stanza #1) SPA Packet from IP: ")

    def wait_taken(self, count: int, *, timeout: float = DEADLINE) -> bool:
        """Wait until it has taken ``count`` packets (the deadline restarts with each one)."""
        return wait_for(
            lambda: self.packets_seen() >= count,
            timeout=timeout,
            interval=0.1,
            progress=self.packets_seen,
        )

    def feed(
        self, pair: NetPair, packets: Sequence[str], *, window: int = 4, source: str | None = None
    ) -> None:
        """Send ``packets`` from the client namespace (from ``source``), a few at a time.

        Each few go once it has taken all but ``window`` of what was fed to
        it so far (this call and earlier ones).
        """
        if self.fed is None:
            self.fed = self.packets_seen()
        for start in range(0, len(packets), window):
            self.wait_taken(self.fed - window)
            chunk = packets[start : start + window]
            pair.send_udp(chunk, source=source)
            self.fed += len(chunk)

    def stop(self) -> None:
        """SIGTERM it (by PID) and wait."""
        if self.proc is not None:
            stop_process(self.proc)

    def iptables_rules(self) -> list[str]:
        """``iptables-save`` lines of the server namespace (filter and nat)."""
        out = self.ns.run(["iptables-save"]).stdout.decode()
        return out.splitlines()


def fwknop_test_packet(
    args: list[str], home: Path, *, self_decrypt_may_fail: bool = False
) -> tuple[str, dict[str, str]]:
    """Run the real client with ``--test -v``; return (Final SPA Data, field dump).

    With ``-v`` the client decrypts its own packet again; in GnuPG mode it
    cannot (it has no server secret key) and exits 1 after printing the
    packet, which ``self_decrypt_may_fail`` accepts.
    """
    rc = home / "fwknoprc"
    if not rc.exists():
        rc.write_text("[default]\n")
        rc.chmod(0o600)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LOGNAME": "root"}
    res = subprocess.run(
        [FWKNOP, "--rc-file", str(rc), "--no-save-args", *args, "--test", "-v"],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    out = res.stdout.decode(errors="replace")
    decrypt_failed = "fko_decrypt_spa_data" in res.stderr.decode(errors="replace") + out
    if res.returncode != 0 and not (self_decrypt_may_fail and decrypt_failed):
        raise RuntimeError(f"fwknop failed ({res.returncode}): {out}{res.stderr.decode()}")
    block = out.split("Generating SPA packet", 1)[0]
    fields = {}
    for line in block.splitlines():
        m = re.match(r"\s*([A-Za-z ]+): (.*)$", line)
        if m:
            fields[m.group(1).strip()] = m.group(2)
    return fields["Final SPA Data"], fields
