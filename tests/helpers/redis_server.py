"""A real ``redis-server`` (Debian's) for tests: our own instance, on a free port, in a temp dir.

Started on loopback (or inside a network namespace, on the addresses given),
with no persistence and no other client than the test's; stopped by its PID.
``stop()`` and ``start()`` again (same port) make an outage; ``pause()``
(SIGSTOP) makes a Redis that takes connections and never answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from .netns import Netns, stop_process
from .ourd import write_private
from .wait import START, LogFile

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port nobody listens on now (on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_redis() -> None:
    """Skip (fail in CI, tests/conftest.py) where Debian's redis-server is missing."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed (Debian package redis-server)")


class RedisServer:
    """One ``redis-server`` of ours."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        bind: Sequence[str] = ("127.0.0.1",),
        ns: Netns | None = None,
        password: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,  # (cert, key, CA): TLS only on ``port``
        users: Sequence[str] = (),  # ACL rules, each a redis.conf ``user`` line without "user "
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.bind = list(bind)
        self.ns = ns
        self.password = password
        self.tls = tls
        self.users = list(users)
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = self.dir / "redis.log"
        self.logs = LogFile(self.logfile)

    def _config(self) -> str:
        lines = [
            f"bind {' '.join(self.bind)}",
            "protected-mode no",
            f"dir {self.dir}",
            'save ""',
            "appendonly no",
            "daemonize no",
            f"logfile {self.logfile}",
        ]
        if self.tls is not None:
            cert, key, ca = self.tls
            lines += ["port 0", f"tls-port {self.port}", f"tls-cert-file {cert}"]
            lines += [f"tls-key-file {key}", f"tls-ca-cert-file {ca}", "tls-auth-clients no"]
        else:
            lines.append(f"port {self.port}")
        if self.password is not None:
            lines.append(f"requirepass {self.password}")
        lines += [f"user {rule}" for rule in self.users]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = START) -> RedisServer:
        """Start it and wait until it takes connections."""
        conf = write_private(self.dir / "redis.conf", self._config())  # passwords are in here
        offset = self.logs.mark()
        argv = [REDIS_SERVER, str(conf)]
        if self.ns is not None:
            self.proc = self.ns.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        alive = self.proc
        if not self.logs.wait("Ready to accept connections", since=offset, timeout=timeout,
                              alive=lambda: alive.poll() is None):  # fmt: skip
            raise RuntimeError(f"redis-server did not start:\n{self.log()}")
        return self

    def log(self) -> str:
        """What it has logged."""
        return self.logs.text()

    def url(self, host: str = "127.0.0.1", db: int = 0) -> str:
        """Its URL (without the password)."""
        scheme = "rediss" if self.tls is not None else "redis"
        return f"{scheme}://{host}:{self.port}/{db}"

    def stop(self) -> None:
        """Stop it by its PID (SIGTERM, then SIGKILL), resumed first if paused."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
        stop_process(self.proc)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections are taken by the kernel and never answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def cli(self, *args: str, host: str = "127.0.0.1") -> str:
        """``redis-cli`` against it (inside its namespace if it has one); its output."""
        argv = [shutil.which("redis-cli") or "redis-cli", "-h", host, "-p", str(self.port),
                "--no-auth-warning", *args]  # fmt: skip
        env = dict(os.environ)
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password  # never on the command line
        if self.ns is not None:
            res = self.ns.run(argv, env=env, check=True)
        else:
            res = subprocess.run(argv, env=env, capture_output=True, check=True, timeout=30)
        return res.stdout.decode()

    def client(self, host: str = "127.0.0.1") -> Any:
        """A redis-py client to it (from this namespace: loopback instances only)."""
        import redis

        tls: dict[str, Any] = {}
        if self.tls is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls[2])}
        return redis.Redis(
            host=host, port=self.port, password=self.password, socket_timeout=10, **tls
        )

    def command_calls(self, command: str, host: str = "127.0.0.1") -> int:
        """How many times ``command`` (e.g. ``set``) was called, from INFO commandstats."""
        for line in self.cli("INFO", "commandstats", host=host).splitlines():
            if line.startswith(f"cmdstat_{command.lower()}:"):
                fields = dict(f.split("=", 1) for f in line.split(":", 1)[1].split(","))
                return int(fields["calls"])
        return 0
