"""The real fwknop 2.6.10 client, knocking from a namespace with an empty rc file of its own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fwknop_core import GeneratedKeys

from .cfwknopd import FWKNOP
from .netns import Netns


def key_args(keys: GeneratedKeys) -> list[str]:
    """The client options that give it ``keys``."""
    return [
        "--key-base64-rijndael",
        keys.rijndael.to_base64(),
        "--key-base64-hmac",
        keys.hmac.to_base64(),
    ]


def stanza_keys(keys: GeneratedKeys) -> str:
    """The access.conf lines for ``keys``."""
    return f"KEY_BASE64 {keys.rijndael.to_base64()}\nHMAC_KEY_BASE64 {keys.hmac.to_base64()}\n"


def real_knock(
    ns: Netns,
    home: Path,
    server: str,
    *args: str,
    keys: Sequence[str],
    allow: str | None = None,
    check: bool = True,
) -> str:
    """Run ``fwknop -D server [-a allow] KEYS ARGS`` in ``ns``; its output."""
    home.mkdir(parents=True, exist_ok=True)
    rc = home / "fwknoprc"
    rc.write_text("[default]\n")
    rc.chmod(0o600)
    argv = [FWKNOP, "--rc-file", str(rc), "--no-save-args", "-D", server, *keys]
    if allow is not None:
        argv += ["-a", allow]
    res = ns.run([*argv, *args], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, check=check)
    return res.stdout.decode() + res.stderr.decode()
