"""The ``fwknop`` command (argparse; stdout for data, stderr for diagnostics)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fwknop_core import HmacType, UsageError, generate_keys

from . import __version__


def _hmac_type(text: str) -> HmacType:
    try:
        return HmacType.from_name(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fwknop",
        description="Single Packet Authorization client, wire-compatible with fwknop 2.6.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"fwknop-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    keygen = sub.add_parser("keygen", help="print a new KEY_BASE64 / HMAC_KEY_BASE64 pair")
    keygen.add_argument(
        "--hmac-type",
        type=_hmac_type,
        default=HmacType.SHA256,
        help="HMAC algorithm the key is for (default sha256)",
    )
    keygen.set_defaults(func=_cmd_keygen)
    return parser


def _cmd_keygen(args: argparse.Namespace) -> int:
    sys.stdout.write(generate_keys(args.hmac_type).as_text())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fwknop``."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    result: int = args.func(args)
    return result


def main_tui() -> int:
    """Entry point of ``fwknop-tui``."""
    sys.stderr.write(
        "fwknop-tui: the interactive client is not part of this build yet; see 'fwknop --help'\n"
    )
    return 2
