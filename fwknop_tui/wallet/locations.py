"""Where the wallet keeps its files.

``FWKNOP_TUI_CONFIG_DIR`` moves the config directory (tests, dotfiles kept in
git); otherwise it is platformdirs' user config directory for "fwknop-tui"
(``~/.config/fwknop-tui`` on Linux, computed from the XDG variables there
without importing platformdirs, which only other systems pay for). The
cache directory (the remembered keyring backend) follows ``XDG_CACHE_HOME``;
the state directory (the knock history) follows ``XDG_STATE_HOME``, and moves
with ``FWKNOP_TUI_CONFIG_DIR`` (into its ``state/``) so tests stay apart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "APP_NAME",
    "CONFIG_ENV",
    "cache_dir",
    "config_dir",
    "profiles_path",
    "state_dir",
]

APP_NAME = "fwknop-tui"
CONFIG_ENV = "FWKNOP_TUI_CONFIG_DIR"


def _xdg(variable: str, default: str) -> Path:
    value = os.environ.get(variable, "")
    base = Path(value) if os.path.isabs(value) else Path.home() / default
    return base / APP_NAME


def config_dir() -> Path:
    """The directory holding profiles.toml."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform.startswith("linux"):  # what platformdirs answers, without its import
        return _xdg("XDG_CONFIG_HOME", ".config")
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_config_dir(APP_NAME))


def profiles_path() -> Path:
    """The profiles file."""
    return config_dir() / "profiles.toml"


def cache_dir() -> Path:
    """Where remembered, re-creatable state lives (never secrets)."""
    if sys.platform.startswith("linux"):
        return _xdg("XDG_CACHE_HOME", ".cache")
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_cache_dir(APP_NAME))


def state_dir() -> Path:
    """Where history that is not configuration lives (the knock history; never secrets)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser() / "state"
    if sys.platform.startswith("linux"):
        return _xdg("XDG_STATE_HOME", ".local/state")
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_state_dir(APP_NAME))
