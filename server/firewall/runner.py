"""The one place firewall commands run: argv lists through subprocess, nft JSON through libnftables.

A command that reads its input (``pfctl -a ANCHOR -f -``) gets it as
``stdin`` text beside its argv. nftables transactions go through
libnftables' documented C API (libnftables(3), libnftables-json(5)) in
process, one call per transaction: no fork per grant. Where the library
cannot be loaded, the same JSON goes to ``nft -j -f -``. Nothing here
builds a shell string.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import shlex
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import FirewallError
from .netlink import ElementCommand

__all__ = [
    "CommandRunner",
    "ElementRunner",
    "Libnftables",
    "NftCommand",
    "NftRunner",
    "RunsCommands",
    "SubprocessRunner",
    "Tools",
    "nft",
]

log = logging.getLogger("fwknop_server.firewall")

_NFT_CTX_OUTPUT_HANDLE = 1 << 3
_NFT_CTX_OUTPUT_JSON = 1 << 4
_TIMEOUT = 30


class CommandRunner(Protocol):
    """Runs one argv list, ``stdin`` (if given) as its input; returns (status, stdout, stderr)."""

    def __call__(
        self, argv: Sequence[str], *, stdin: str | None = None
    ) -> tuple[int, str, str]: ...


class ElementRunner(Protocol):
    """Applies nft set element commands as one transaction (``netlink.NftNetlink``)."""

    def __call__(self, commands: Sequence[ElementCommand]) -> None: ...


class NftRunner(Protocol):
    """Runs one nft JSON document (a transaction); returns nft's JSON output, if any."""

    def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None: ...


class RunsCommands:
    """For a backend that drives a command-line tool through ``self._run`` (a ``CommandRunner``)."""

    _run: CommandRunner

    def _must(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run argv; its output, or a FirewallError naming the command and what it said."""
        status, out, err = self._run(list(argv), stdin=stdin)
        if status != 0:
            raise FirewallError(f"{shlex.join(argv)}: {err.strip() or f'exit {status}'}")
        return out

    def _ok(self, argv: Sequence[str]) -> bool:
        """Whether argv succeeds (a probe: ``-C``, ``-L``, ``list``...)."""
        return self._run(list(argv))[0] == 0


class SubprocessRunner:
    """``CommandRunner`` over subprocess, logging each command at debug level."""

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        log.debug("run: %s (input: %r)", argv, stdin)
        try:
            res = subprocess.run(
                list(argv),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FirewallError(f"{argv[0]}: {exc}") from None
        return res.returncode, res.stdout, res.stderr


class Libnftables:
    """``NftRunner`` over libnftables, in process (one context, used by one thread at a time)."""

    in_process = True  # no fork: the daemon runs its transactions on the event loop

    def __init__(self, library: str | None = None) -> None:
        name = library or ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise FirewallError(f"cannot load libnftables: {exc}") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_int
        for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise FirewallError("libnftables: cannot create a context")
        lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON | _NFT_CTX_OUTPUT_HANDLE)
        if lib.nft_ctx_buffer_output(ctx) or lib.nft_ctx_buffer_error(ctx):
            lib.nft_ctx_free(ctx)
            raise FirewallError("libnftables: cannot buffer output")
        self._lib = lib
        self._ctx = ctx
        self._lock = threading.Lock()

    def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None:
        payload = json.dumps(document).encode()
        with self._lock:
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, payload)
            out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            raise FirewallError(f"nft: {err.decode(errors='replace').strip() or 'failed'}")
        return json.loads(out) if out.strip() else None

    def close(self) -> None:
        """Free the context."""
        with self._lock:
            if self._ctx:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


class NftCommand:
    """``NftRunner`` over the ``nft`` binary (``nft -j -f -``): the fallback."""

    def __init__(self, exe: str = "nft") -> None:
        self.exe = exe

    def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None:
        argv = [self.exe, "-j", "-a", "-f", "-"]
        status, out, err = SubprocessRunner()(argv, stdin=json.dumps(document))
        if status != 0:
            raise FirewallError(f"nft: {err.strip() or 'failed'}")
        return json.loads(out) if out.strip() else None


def nft() -> NftRunner:
    """The best nft runner available here: libnftables, else the ``nft`` binary."""
    try:
        return Libnftables()
    except FirewallError as exc:
        log.info("%s; using the nft command instead", exc)
        return NftCommand()


@dataclass
class Tools:
    """What a backend runs its commands with (tests inject recorders)."""

    run: CommandRunner = field(default_factory=SubprocessRunner)
    nft_run: NftRunner | None = None

    def nft(self) -> NftRunner:
        """The nft runner given, else the best one here (made once)."""
        if self.nft_run is None:
            self.nft_run = nft()
        return self.nft_run
