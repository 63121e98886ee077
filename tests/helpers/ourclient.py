"""Running our own ``fwknop`` command as a user would: a real process, its own config dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .netns import Netns

FWKNOP_CLI = Path(sys.executable).with_name("fwknop")


class OurClient:
    """Our ``fwknop`` with a private config dir and HOME under ``root``."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.config = root / "config"
        self.home = root / "home"
        self.config.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "FWKNOP_TUI_CONFIG_DIR": str(self.config),
            "LOGNAME": "root",
            "LANG": "C.UTF-8",
        } | (env or {})

    @property
    def profiles(self) -> Path:
        """The profiles file."""
        return self.config / "profiles.toml"

    def key_file(self, name: str, text: str) -> Path:
        """A 0600 file holding key text."""
        path = self.root / f"{name}.keys"
        path.write_text(text)
        path.chmod(0o600)
        return path

    def add_profile(self, name: str, keys_text: str, **fields: object) -> Path:
        """Append ``[profiles.NAME]`` with ``fields`` and a 0600 key file holding ``keys_text``."""
        table = {**fields, "key_file": str(self.key_file(name, keys_text))}
        lines = [f"[profiles.{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
        with self.profiles.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
        return self.profiles

    def argv(self, args: Sequence[str]) -> list[str]:
        """The full command line."""
        return [str(FWKNOP_CLI), *args]

    def run(
        self,
        args: Sequence[str],
        *,
        ns: Netns | None = None,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``fwknop ARGS`` (in ``ns`` if given) and return the finished process."""
        argv = self.argv(args)
        if ns is not None:
            argv = ns.argv(argv)
        return subprocess.run(
            argv,
            env=self.env | (env or {}),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
