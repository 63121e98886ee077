"""The ``fwknopd`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fwknop_core import HmacType, UsageError, generate_keys

from . import __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fwknopd``."""
    parser = argparse.ArgumentParser(prog="fwknopd", description="SPA server (fwknopd-compatible).")
    parser.add_argument(
        "-V", "--version", action="version", version=f"fwknopd (fwknop-tui) {__version__}"
    )
    parser.add_argument(
        "-k", "--key-gen", action="store_true", help="print a new key pair and exit"
    )
    parser.add_argument("--hmac-digest-type", default="sha256", help="HMAC type for --key-gen")
    args = parser.parse_args(argv)
    if args.key_gen:
        try:
            hmac_type = HmacType.from_name(args.hmac_digest_type)
        except UsageError as exc:
            parser.error(str(exc))
        sys.stdout.write(generate_keys(hmac_type).as_text())
        return 0
    parser.print_help()
    return 0
