"""GnuPG homes built from the throw-away keys in tests/data/vectors/gpg."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .vectors import CLIENT_GPG_FPR, GPG_DIR, SERVER_GPG_FPR


@dataclass(frozen=True)
class GpgHomes:
    """A server home (server secret + client public) and a client home (the reverse)."""

    server: Path
    client: Path


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> None:
    subprocess.run(
        ["gpg", "--batch", "--quiet", "--homedir", str(home), *args],
        input=stdin,
        check=True,
        capture_output=True,
        timeout=60,
    )


def build_homes(root: Path) -> GpgHomes:
    """Create both homes under ``root``, with each side trusting the other's key."""
    srv, cli = root / "srv", root / "cli"
    for home in (srv, cli):
        home.mkdir(mode=0o700, parents=True)
    _gpg(srv, "--import", str(GPG_DIR / "server-secret.asc"), str(GPG_DIR / "client-public.asc"))
    _gpg(cli, "--import", str(GPG_DIR / "client-secret.asc"), str(GPG_DIR / "server-public.asc"))
    _gpg(srv, "--import-ownertrust", stdin=f"{CLIENT_GPG_FPR}:6:\n".encode())
    _gpg(cli, "--import-ownertrust", stdin=f"{SERVER_GPG_FPR}:6:\n".encode())
    return GpgHomes(srv, cli)


def stop_agents(homes: GpgHomes) -> None:
    """Stop the gpg-agents these homes started (they are ours, one per home)."""
    for home in (homes.server, homes.client):
        if shutil.which("gpgconf"):
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                capture_output=True,
                timeout=30,
                check=False,
            )
