"""The interactive client (Textual). Only this package imports Textual.

``run(argv)`` is the ``fwknop-tui`` command: ``--demo`` starts the companion
fwknopd on loopback and knocks it; otherwise the profile list opens (with
the demo offered when there are no profiles yet).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    from .. import __version__  # noqa: PLC0415

    p = argparse.ArgumentParser(
        prog="fwknop-tui",
        description="Single Packet Authorization client with a key wallet (Textual). "
        "`fwknop --help` lists the one-line commands.",
    )
    p.add_argument("-V", "--version", action="version", version=f"fwknop-tui {__version__}")
    p.add_argument(
        "--demo",
        action="store_true",
        help="start our fwknopd on loopback (log-only firewall) and watch a knock succeed",
    )
    return p


def run(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the app; the exit status."""
    import sys  # noqa: PLC0415

    argv = sys.argv[1:] if argv is None else argv
    # a bare `fwknop-tui` has nothing to parse: argparse (and gettext) stay unloaded
    demo = _parser().parse_args(argv).demo if argv else False
    from .collector import Collector  # noqa: PLC0415

    collector = Collector()
    collector.manage()  # no garbage collection before the first frame (see collector.py)
    from .app import FwknopApp  # noqa: PLC0415

    app = FwknopApp(demo=demo, collector=collector)
    app.run()
    return app.return_code or 0
