"""A private Secret Service (D-Bus session bus + gnome-keyring) for keyring tests.

``SecretServiceSession`` does what ``dbus-run-session`` plus
``gnome-keyring-daemon --unlock`` do, but keeps both daemons for the whole
test so that many commands share one keyring: it starts ``dbus-daemon
--session`` on a socket file in a temporary directory (a path socket, so
commands run in network namespaces reach it too), then
``gnome-keyring-daemon --foreground --unlock --components=secrets`` with the
password on stdin. Both are our children and are stopped by PID.
``env`` holds the variables a command needs to use this keyring.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .netns import stop_process
from .wait import START, wait_for

PASSWORD = "fwknop-tui-test-keyring"


def unavailable_reason() -> str | None:
    """Why a Secret Service cannot be started here, or None."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon", "secret-tool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install dbus gnome-keyring libsecret-tools)"
    return None


class SecretServiceSession:
    """One session bus and one unlocked gnome-keyring, private to a test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime = root / "run"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.bus = root / "bus"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.bus}",
            "LANG": "C.UTF-8",
        }

    def start(self) -> SecretServiceSession:
        """Start the bus and the keyring; wait until the Secret Service answers."""
        self.home.mkdir(parents=True, mode=0o700)
        self.runtime.mkdir(parents=True, mode=0o700)
        bus = subprocess.Popen(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--nopidfile",
                f"--address=unix:path={self.bus}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        self.procs.append(bus)
        if not wait_for(self.bus.exists, timeout=START):
            raise RuntimeError("dbus-daemon did not create its socket")
        keyring = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        self.procs.append(keyring)
        assert keyring.stdin is not None
        keyring.stdin.write(PASSWORD.encode())
        keyring.stdin.close()

        def answers() -> bool:
            probe = self.run(["secret-tool", "search", "service", "fwknop-tui-probe"], check=False)
            return probe.returncode in (0, 1) and b"org.freedesktop" not in probe.stderr

        if not wait_for(answers, timeout=START, interval=0.2):
            raise RuntimeError("gnome-keyring did not come up on the session bus")
        return self

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        stdin: bytes | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside this session."""
        return subprocess.run(
            list(argv),
            env=self.env | (env or {}),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=check,
        )

    def lookup(self, username: str, service: str = "fwknop-tui") -> str | None:
        """The secret of an entry as libsecret sees it (None if absent)."""
        res = self.run(
            ["secret-tool", "lookup", "service", service, "username", username], check=False
        )
        return res.stdout.decode() if res.returncode == 0 else None

    def stop(self) -> None:
        """Stop the keyring, then the bus (by PID)."""
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


@contextmanager
def secret_service(root: Path) -> Iterator[SecretServiceSession]:
    """A started session, stopped at the end."""
    session = SecretServiceSession(root)
    try:
        yield session.start()
    finally:
        session.stop()
