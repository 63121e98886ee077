"""A real firewalld inside a test's network namespace, on a D-Bus system bus of its own.

firewalld talks to ``firewall-cmd`` over the system bus, so each instance
gets a private ``dbus-daemon --system`` (its own config and socket: the
host's bus and any host firewalld are never touched) and its own
``--system-config`` directory holding only ``firewalld.conf``, whose
``FirewallBackend`` the test chooses. Zones and services come from the
package's defaults (``public``: ssh and dhcpv6-client allowed, everything
else rejected). Every command that should reach this firewalld needs
``env`` (``DBUS_SYSTEM_BUS_ADDRESS``). Both daemons are started through the
namespace, so ``net_pair`` stops them by PID even if a test fails midway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .netns import Netns, stop_process
from .wait import DEADLINE, START, wait_for

FIREWALLD = "/usr/sbin/firewalld"
FIREWALL_CMD = "/usr/bin/firewall-cmd"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def firewalld_missing() -> str | None:
    """Why firewalld cannot run here, or None if it can."""
    for exe in (FIREWALLD, FIREWALL_CMD):
        if not Path(exe).exists():
            return f"{exe} is not installed (apt-get install firewalld)"
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed"
    return None


@dataclass
class PrivateFirewalld:
    """A running firewalld in ``ns`` and how to reach it."""

    ns: Netns
    env: dict[str, str]
    log: Path

    def cmd(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run ``firewall-cmd ARGS`` against this firewalld."""
        return self.ns.run(
            [FIREWALL_CMD, *args], check=check, env={**os.environ, **self.env}, timeout=60
        )

    def passthrough(self, *args: str) -> str:
        """``firewall-cmd --direct --passthrough ipv4 ARGS``: its standard output."""
        return self.cmd("--direct", "--passthrough", "ipv4", *args).stdout.decode()


@contextmanager
def private_firewalld(
    ns: Netns, workdir: Path, *, backend: str = "iptables", timeout: float = START
) -> Iterator[PrivateFirewalld]:
    """Start dbus-daemon and firewalld for ``ns``; stop both (firewalld first) after."""
    workdir.mkdir(parents=True, exist_ok=True)
    etc = workdir / "firewalld-etc"
    etc.mkdir(exist_ok=True)
    (etc / "firewalld.conf").write_text(
        f"DefaultZone=public\nFirewallBackend={backend}\nCleanupOnExit=yes\nLogDenied=off\n"
    )
    # the socket path must stay short (108 bytes), so not under pytest's tmp_path
    sockdir = Path(tempfile.mkdtemp(prefix="fkbus", dir="/tmp"))
    socket = sockdir / "bus"
    bus_conf = workdir / "bus.conf"
    bus_conf.write_text(_BUS_CONFIG.format(socket=socket))
    log = workdir / "firewalld.log"
    env = {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={socket}"}
    bus = firewalld = None
    try:
        with log.open("ab") as out:
            bus = ns.popen(
                ["dbus-daemon", f"--config-file={bus_conf}", "--nofork", "--nopidfile"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            if not wait_for(lambda: socket.exists() or bus.poll() is not None, timeout=timeout):
                raise RuntimeError(f"dbus-daemon did not start:\n{log.read_text()}")
            firewalld = ns.popen(
                [FIREWALLD, "--nofork", "--nopid", "--system-config", str(etc),
                 "--log-target", "console"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )  # fmt: skip
        running = PrivateFirewalld(ns, env, log)
        if not wait_for(
            lambda: (
                firewalld.poll() is not None or running.cmd("--state").stdout.strip() == b"running"
            ),
            timeout=timeout,
            interval=0.2,
        ):
            raise RuntimeError(f"firewalld did not start:\n{log.read_text()}")
        if firewalld.poll() is not None:
            raise RuntimeError(f"firewalld exited {firewalld.returncode}:\n{log.read_text()}")
        yield running
    finally:
        for proc in (firewalld, bus):
            if proc is not None:
                stop_process(proc, grace=DEADLINE)  # firewalld cleans up on exit: let it
        shutil.rmtree(sockdir, ignore_errors=True)
