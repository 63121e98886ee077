"""fwknop-tui: the client. The TUI lives in ``fwknop_tui.ui``; nothing here imports it."""

from __future__ import annotations

__version__ = "0.1.0"
