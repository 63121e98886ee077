"""``python -m fwknop_tui`` runs the ``fwknop`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
