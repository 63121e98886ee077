"""A private OpenSSH server in a namespace, and a client that uses nothing of this machine's.

Host key, client key and authorized_keys are made for the test in its own
directory; the server reads only its own config file, the client only the
options given here (``-F /dev/null``, its own known_hosts and identity), so
neither touches the machine's ssh configuration or ``~/.ssh``. The server
is started by PID in the namespace and stopped with it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .netns import Netns
from .wait import START, wait_for

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"


def openssh_missing() -> str | None:
    """Why the OpenSSH tests cannot run here, or None."""
    for path in (SSHD, SSH, SSH_KEYGEN):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install openssh-server openssh-client)"
    return None


def _keygen(path: Path) -> str:
    """A new ed25519 key without a passphrase; its public line."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "fwknop-tui-test", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class Sshd:
    """One sshd of ours listening on ``address:port`` in ``ns``."""

    ns: Netns
    dir: Path
    address: str
    port: int = 22

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.host_public = _keygen(self.dir / "host_key")
        self.identity = self.dir / "client_key"
        client_public = _keygen(self.identity)
        (self.dir / "authorized_keys").write_text(client_public + "\n")
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        (self.dir / "known_hosts").write_text(f"{host} {self.host_public}\n")
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\n"
            f"ListenAddress {self.address}\n"
            f"HostKey {self.dir / 'host_key'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "LogLevel VERBOSE\n"
        )
        self.log = self.dir / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = START) -> Sshd:
        """Start it in the foreground (by PID, in its namespace) and wait until it listens."""
        # sshd's privilege separation needs this empty root-owned directory, as its service has
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = self.ns.popen(
                [SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        listening = f"Server listening on {self.address} port {self.port}"
        started = wait_for(
            lambda: listening in self.text() or self.proc.poll() is not None,  # type: ignore[union-attr]
            timeout=timeout,
        )
        if not started or self.proc.poll() is not None:
            raise RuntimeError(f"sshd did not start:\n{self.text()}")
        return self

    def text(self) -> str:
        """What it has logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client_options(self) -> list[str]:
        """ssh options that trust only this server's key and use only the test's identity."""
        return [
            "-F", "/dev/null",
            "-i", str(self.identity),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip

    def config_for(self, block: str) -> Path:
        """An ssh client config: ``block`` (a Host block) plus the test's own settings."""
        path = self.dir / "ssh_config"
        path.write_text(
            f"{block}"
            f"    IdentityFile {self.identity}\n"
            "    IdentitiesOnly yes\n"
            "    BatchMode yes\n"
            "    StrictHostKeyChecking yes\n"
            f"    UserKnownHostsFile {self.dir / 'known_hosts'}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    LogLevel ERROR\n"
        )
        return path
