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

``install_demo_profile`` puts a profile for that server into the wallet,
keys in the keyring. Where there is no usable keyring (a fresh headless
machine), the keys go to a 0600 file beside profiles.toml instead and the
profile's ``key_file`` names it, so the demo works anywhere; the caller is
told which, to say so.
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
    "install_demo_profile",
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


def _fwknopd_argv() -> list[str]:
    """Our fwknopd: the script beside this interpreter, else the module through it."""
    script = Path(sys.executable).with_name("fwknopd")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from fwknop_server.cli import main; sys.exit(main())",
    ]


class DemoServer:
    """The companion fwknopd on loopback, for as long as the demo runs."""

    def __init__(self, *, access: str = DEMO_ACCESS, keys: GeneratedKeys | None = None) -> None:
        self.access = access
        self.keys = keys or generate_keys()
        self.port = 0
        self._log: list[str] = []
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
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
        self._dir = Path(tempfile.mkdtemp(prefix="fwknop-tui-demo-"))
        self.port = _free_udp_port()
        conf, access = self._write_files(self._dir)
        argv = [*_fwknopd_argv(), "-f", "-c", str(conf), "-a", str(access)]
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self._dir,
            )
        except OSError as exc:
            self._cleanup()
            raise DemoError(f"cannot start the demo fwknopd: {exc.strerror}") from None
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
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


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
