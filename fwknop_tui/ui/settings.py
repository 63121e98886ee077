"""The TUI's own settings: ``tui.toml`` beside profiles.toml (theme and key bindings).

```toml
theme = "nord"            # any Textual theme; the palette's "Theme" command sets it
[keymap]                  # binding id = keys (comma-separated), as shown in the help screen
knock = "enter,k"
share = "ctrl+s"
```

Read with tomllib (through the parse cache profiles.toml uses); the theme
is written back with tomlkit so comments and the user's own lines survive.
A file that does not parse is reported (file, line) and left alone: the
TUI starts with the defaults and never overwrites it. Nothing secret
belongs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..wallet.locations import config_dir
from ..wallet.profiles import atomic_write, parsed_toml

__all__ = ["DEFAULT_THEME", "Settings", "SettingsError", "load_settings", "save_theme"]

DEFAULT_THEME = "textual-dark"


class SettingsError(ValueError):
    """tui.toml cannot be used: the message names the file, line and key."""


@dataclass(frozen=True)
class Settings:
    """What tui.toml says."""

    theme: str = DEFAULT_THEME
    keymap: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def settings_path() -> Path:
    """Where tui.toml lives."""
    return config_dir() / "tui.toml"


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(key):
            return number
    return None


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings and every problem found (each ``file:line: key: message``)."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(path=path), []
    except (OSError, UnicodeDecodeError) as exc:
        return Settings(path=path), [f"{path}: cannot be read: {exc}"]
    try:
        data: dict[str, Any] = parsed_toml(path, text)  # tomllib only when the text is new
    except ValueError as exc:  # tomllib.TOMLDecodeError
        return Settings(path=path), [f"{path}: not TOML: {exc}"]
    problems: list[str] = []

    def problem(key: str, message: str) -> None:
        line = _line_of(text, key.rsplit(".", maxsplit=1)[-1])
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {key}: {message}")

    theme = data.get("theme", DEFAULT_THEME)
    if not isinstance(theme, str) or not theme:
        problem("theme", "must be the name of a theme")
        theme = DEFAULT_THEME
    keymap: dict[str, str] = {}
    raw = data.get("keymap", {})
    if not isinstance(raw, dict):
        problem("keymap", "must be a table of binding id = keys")
        raw = {}
    for binding, keys in raw.items():
        if isinstance(keys, str) and keys.strip():
            keymap[binding] = keys.strip()
        else:
            problem(f"keymap.{binding}", 'must be a string of keys, e.g. "ctrl+k"')
    for key in data:
        if key not in ("theme", "keymap"):
            problem(key, "unknown setting (known: theme, keymap)")
    return Settings(theme=theme, keymap=keymap, path=path), problems


def save_theme(theme: str, path: Path | None = None) -> None:
    """Remember the theme; refuses (``SettingsError``) to touch a file that does not parse."""
    import tomlkit  # noqa: PLC0415 - only a theme change pays for it

    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "# fwknop-tui settings (see the help screen for binding ids)\n"
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise SettingsError(f"{path}: not TOML ({exc}); not changed") from None
    doc["theme"] = theme
    atomic_write(path, tomlkit.dumps(doc), mode=0o600)
