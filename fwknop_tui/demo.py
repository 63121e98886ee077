"""The first-run demo: the companion fwknopd on loopback, and a profile that knocks it.

``DemoServer`` runs our ``fwknopd`` as a child process (the client never
imports the server) in UDP-server mode on a free port, with the log-only
firewall: it decides every packet exactly as it would in production and
says what it would open, but touches no firewall, so the demo needs no root
and changes nothing on the machine. Its files (fwknopd.conf, an access.conf
holding the demo keys, the run directory with the replay cache) live in a
private temporary directory (0700, files 0600) that ``stop`` removes.

The server's log is read on a thread into a list; ``lines_since(mark)``
lets the UI show it, and ``wait_for_decision(mark)`` finds the line in which
fwknopd accepted or refused a packet sent after ``mark``, which is how the
demo shows a knock succeeding without a firewall to open. Readers look at
the list and never consume it, so neither can steal the other's lines.

The child's life is tied to the TUI's by a lifeline: its standard input
is a pipe whose write end only the TUI holds. When the TUI goes, however it
goes (quit, a closed terminal's SIGHUP, SIGKILL), the kernel closes that
end, the child reads end-of-file and stops itself as on SIGTERM (grants
closed, files removed). ``PR_SET_PDEATHSIG`` would not do: the server is
started from a worker thread, and the kernel sends that signal when the
forking *thread* ends, not the process. The child runs in a session of its
own, so a terminal's signals (SIGHUP means "reload" to fwknopd) do not
reach it; the lifeline does.

``install_demo_profile`` puts a profile for that server into the wallet,
keys in the keyring. Where there is no usable keyring (a fresh headless
machine), the keys go to a 0600 file beside profiles.toml instead and the
profile's ``key_file`` names it, so the demo works anywhere; the caller is
told which, to say so. The profile goes with the demo (``remove_demo_profile``
when the TUI stops it); one left behind by a TUI that was killed points at
a port nobody listens on, and is removed at the next start
(``remove_dead_demo_profiles``). Until then ``demo_is_dead`` keeps a knock
from reporting a packet "sent" to nobody.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fwknop_core import GeneratedKeys, generate_keys

from .errors import ClientError, KeyringLockedError, NoKeyringError
from .wallet.keys import encode_stored
from .wallet.locations import config_dir
from .wallet.profiles import Profile
from .wallet.wallet import Wallet

__all__ = [
    "DEMO_ACCESS",
    "DEMO_DESCRIPTION",
    "DemoError",
    "DemoServer",
    "ServerDecision",
    "demo_is_dead",
    "install_demo_profile",
    "remove_dead_demo_profiles",
    "remove_demo_profile",
]

DEMO_ACCESS = "tcp/22"
DEMO_DESCRIPTION = "Demo: knocks the companion fwknopd on loopback (log-only firewall)"
START_TIMEOUT = 20.0
_READY = "Starting fwknopd main event loop"
_LINE = re.compile(r"fwknopd\[\d+\]: (.*)$")
_ACCEPTED = re.compile(r"^SPA packet from (\S+) .*: opening (.+)$")
_REFUSED = re.compile(r"^refused SPA packet from (\S+) (.*)$")


class DemoError(ClientError):
    """The demo server could not be started."""


@dataclass(frozen=True)
class ServerDecision:
    """What the demo fwknopd said about a packet."""

    accepted: bool
    source: str
    text: str


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_DIR_PREFIX = "fwknop-tui-demo-"
# Our fwknopd's command line, run by this interpreter, with a thread that waits on the
# lifeline (standard input): end-of-file means the TUI is gone, so stop as on SIGTERM,
# force it if that takes too long, and remove the demo's directory (the working one).
_LIFELINE_MAIN = f"""\
import os, shutil, signal, sys, threading, time
orphaned = threading.Event()
def lifeline():
    while os.read(0, 64):
        pass
    orphaned.set()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os.kill(os.getpid(), signal.SIGKILL)
threading.Thread(target=lifeline, name="lifeline", daemon=True).start()
from fwknop_server.cli import main
code = main()
if orphaned.is_set() and os.path.basename(os.getcwd()).startswith({_DIR_PREFIX!r}):
    shutil.rmtree(os.getcwd(), ignore_errors=True)
sys.exit(code)
"""


def _fwknopd_argv() -> list[str]:
    """Our fwknopd, through this interpreter, on a lifeline (see the module's docstring)."""
    return [sys.executable, "-c", _LIFELINE_MAIN]


class DemoServer:
    """The companion fwknopd on loopback, for as long as the demo runs."""

    def __init__(self, *, access: str = DEMO_ACCESS, keys: GeneratedKeys | None = None) -> None:
        self.access = access
        self.keys = keys or generate_keys()
        self.port = 0
        self._log: list[str] = []
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._lifeline: int | None = None  # the write end of the child's standard input
        self._dir: Path | None = None
        self._reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the child is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._proc.pid if self._proc is not None else None

    def _write_files(self, root: Path) -> tuple[Path, Path]:
        run = root / "run"
        run.mkdir(mode=0o700)
        conf = root / "fwknopd.conf"
        access = root / "access.conf"
        conf.write_text(
            "# the fwknop-tui demo: UDP server on loopback, log-only firewall\n"
            "ENABLE_UDP_SERVER Y\n"
            f"UDPSERV_PORT {self.port}\n"
            "FIREWALL_TYPE log\n"
            f"FWKNOP_RUN_DIR {run}\n",
            encoding="utf-8",
        )
        from .wallet.profiles import atomic_write  # noqa: PLC0415

        atomic_write(  # it holds the keys: 0600 from its first byte
            access,
            "SOURCE 127.0.0.1\n"
            f"{self.keys.as_text().strip()}\n"
            f"HMAC_DIGEST_TYPE {self.keys.hmac.type.fwknop_name}\n"
            f"OPEN_PORTS {self.access}\n"
            "REQUIRE_SOURCE_ADDRESS Y\n"
            "FW_ACCESS_TIMEOUT 30\n",
            private=True,
        )
        conf.chmod(0o600)
        return conf, access

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start fwknopd and wait until it listens; ``DemoError`` with its words if it cannot."""
        if self.running:
            return
        self._dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        self.port = _free_udp_port()
        conf, access = self._write_files(self._dir)
        argv = [*_fwknopd_argv(), "-f", "-c", str(conf), "-a", str(access)]
        read_end, self._lifeline = os.pipe2(os.O_CLOEXEC)  # no other child may inherit it
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self._dir,
                start_new_session=True,
            )
        except OSError as exc:
            self._cleanup()
            raise DemoError(f"cannot start the demo fwknopd: {exc.strerror}") from None
        finally:
            os.close(read_end)
        self._reader = threading.Thread(target=self._read, name="demo-fwknopd-log", daemon=True)
        self._reader.start()
        if self._wait(lambda line: line.startswith(_READY), 0, timeout) is None:
            said = "; ".join(self._log[-3:]) or "no output"
            self.stop()
            raise DemoError(f"the demo fwknopd did not start: {said}")

    def _read(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        for raw in proc.stderr:
            m = _LINE.search(raw.rstrip("\n"))
            text = m.group(1) if m else raw.strip()
            if text:
                with self._changed:
                    self._log.append(text)
                    self._changed.notify_all()
        with self._changed:  # the child is gone: wake every waiter
            self._changed.notify_all()

    @property
    def mark(self) -> int:
        """A position in the log: what is logged from now on comes after it."""
        with self._changed:
            return len(self._log)

    def lines_since(self, mark: int) -> tuple[list[str], int]:
        """Log lines after ``mark``, and the new mark."""
        with self._changed:
            return self._log[mark:], len(self._log)

    def _wait(self, match: Callable[[str], bool], since: int, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            index = since
            while True:
                for line in self._log[index:]:
                    if match(line):
                        return line
                index = len(self._log)
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    return None
                self._changed.wait(min(left, 0.2))

    def wait_for_decision(self, since: int, timeout: float = 3.0) -> ServerDecision | None:
        """fwknopd's verdict on a packet sent after ``since`` (a ``mark``), or None if silent."""
        line = self._wait(lambda t: bool(_ACCEPTED.match(t) or _REFUSED.match(t)), since, timeout)
        if line is None:
            return None
        if m := _ACCEPTED.match(line):
            return ServerDecision(True, m.group(1), f"accepted: opening {m.group(2)}")
        m = _REFUSED.match(line)
        return ServerDecision(
            False, m.group(1) if m else "?", f"refused {m.group(2) if m else line}"
        )

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and remove its files."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _port_is_free(port: int) -> bool:
    """Whether nothing listens on UDP 127.0.0.1:``port`` (binding it succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def is_demo_profile(profile: Profile) -> bool:
    """Whether ``profile`` is one the demo made (and the user has not made their own)."""
    return profile.description == DEMO_DESCRIPTION and profile.host == "127.0.0.1"


def demo_is_dead(profile: Profile) -> bool:
    """A demo profile whose fwknopd is gone: nothing listens on its port any more."""
    return is_demo_profile(profile) and _port_is_free(profile.port)


def remove_demo_profile(wallet: Wallet, name: str) -> None:
    """Delete a demo profile, its keyring entries and its key file (if it had to use one)."""
    profile = wallet.get(name)
    if not is_demo_profile(profile):
        return
    wallet.remove(name)
    own_file = config_dir() / f"{name}.keys"
    if profile.key_file and Path(profile.key_file) == own_file:
        own_file.unlink(missing_ok=True)


def remove_dead_demo_profiles(wallet: Wallet) -> list[str]:
    """Remove demo profiles left behind by a TUI that could not clean up; their names."""
    try:
        good, _bad = wallet.profiles.load()
    except ClientError:
        return []
    removed = []
    for profile in good:
        if demo_is_dead(profile):
            remove_demo_profile(wallet, profile.name)
            removed.append(profile.name)
    return removed


def _demo_name(wallet: Wallet) -> str:
    """``demo``, unless the user has a profile of that name that is not ours."""
    names = set(wallet.names())
    for candidate in ("demo", *(f"demo-{n}" for n in range(2, 100))):
        if candidate not in names:
            return candidate
        with contextlib.suppress(ClientError, ValueError):
            if wallet.get(candidate).description == DEMO_DESCRIPTION:
                return candidate
    raise DemoError("too many profiles named demo-N: remove some")


def install_demo_profile(wallet: Wallet, server: DemoServer) -> tuple[Profile, str]:
    """Add (or refresh) the demo profile for ``server``; returns it and where its keys went."""
    name = _demo_name(wallet)
    table = {
        "host": "127.0.0.1",
        "port": server.port,
        "access": [server.access],
        "allow_ip": "127.0.0.1",
        "hmac_type": server.keys.hmac.type.fwknop_name,
        "description": DEMO_DESCRIPTION,
    }
    profile = Profile.from_table(name, table)
    keys = {
        "rijndael": encode_stored(server.keys.rijndael.secret),
        "hmac": encode_stored(server.keys.hmac.secret),
    }
    try:
        wallet.add(profile, keys=keys, replace=True)
    except (NoKeyringError, KeyringLockedError) as exc:
        path = config_dir() / f"{name}.keys"
        from .wallet.profiles import atomic_write  # noqa: PLC0415

        atomic_write(path, server.keys.as_text(), private=True)
        profile = profile.with_changes({"key_file": str(path)})
        wallet.add(profile, replace=True)
        return profile, f"a 0600 key file, {path} (no keyring: {exc})"
    return profile, "the keyring"
