"""The key wallet: profiles in TOML, keys in the OS keyring (headless; no UI toolkit).

``Wallet`` is the entry point for the CLI and the TUI; ``profiles``,
``secrets``, ``keys``, ``validate`` and ``rc`` hold the parts.
"""

from __future__ import annotations

from .wallet import Wallet

__all__ = ["Wallet"]
