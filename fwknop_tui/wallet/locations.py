"""Where the wallet keeps its files.

``FWKNOP_TUI_CONFIG_DIR`` moves the config directory (tests, dotfiles kept in
git); otherwise it is platformdirs' user config directory for "fwknop-tui"
(``~/.config/fwknop-tui`` on Linux). The cache directory (the remembered
keyring backend) follows ``XDG_CACHE_HOME`` through platformdirs.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["APP_NAME", "CONFIG_ENV", "cache_dir", "config_dir", "profiles_path"]

APP_NAME = "fwknop-tui"
CONFIG_ENV = "FWKNOP_TUI_CONFIG_DIR"


def config_dir() -> Path:
    """The directory holding profiles.toml."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs  # noqa: PLC0415 - only when no override is set

    return Path(platformdirs.user_config_dir(APP_NAME))


def profiles_path() -> Path:
    """The profiles file."""
    return config_dir() / "profiles.toml"


def cache_dir() -> Path:
    """Where remembered, re-creatable state lives (never secrets)."""
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_cache_dir(APP_NAME))
