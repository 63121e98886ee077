"""fwknop_server: an SPA daemon that reads fwknopd's own configuration files."""

from __future__ import annotations

__version__ = "0.1.0"
