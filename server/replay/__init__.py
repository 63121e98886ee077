"""Replay stores: where the digests of packets already seen are kept, chosen by configuration.

Every store speaks ``vocab.ReplayStore``: ``add`` records a digest and says
whether it was new, in one step (atomic where the store is shared), and the
pipeline never asks anything else of a store while deciding (``seen`` only
in ``--test`` mode). Only packets that decrypted (and so passed the HMAC,
where the stanza has one) ever reach a store: junk costs it nothing.

``REPLAY_CACHE_URL`` chooses the store by its scheme (``STORES``); unset,
the SQLite cache at ``REPLAY_DB_FILE``. A new store is a module with an
``open_store(settings)`` and one line in ``STORES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..config import ServerConfig
from ..errors import ConfigError, Problem
from ..vocab import ReplayStore
from . import sqlite

__all__ = ["STORES", "ReplaySettings", "open_store"]


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """What fwknopd.conf says about the replay cache."""

    enabled: bool = True  # ENABLE_DIGEST_PERSISTENCE (and not --test)
    url: str | None = None  # REPLAY_CACHE_URL; None: SQLite at ``path``
    path: Path | None = None  # REPLAY_DB_FILE
    legacy_file: Path | None = None  # DIGEST_FILE, fwknopd's own cache, imported if present
    max_age: int | None = 120  # how long a packet can be replayed (None: for ever)

    @property
    def scheme(self) -> str:
        """The store ``url`` names (``sqlite`` when unset)."""
        return urlsplit(self.url).scheme if self.url else "sqlite"

    @classmethod
    def from_config(cls, config: ServerConfig, *, test_mode: bool = False) -> ReplaySettings:
        """The replay settings of ``config``; ``ConfigError`` for a store we do not have."""
        url = config.text("REPLAY_CACHE_URL")
        settings = cls(
            enabled=config.flag("ENABLE_DIGEST_PERSISTENCE") and not test_mode,
            url=url,
            path=config.file("REPLAY_DB_FILE"),
            legacy_file=config.file("DIGEST_FILE"),
            max_age=config.max_packet_age,
        )
        if settings.scheme not in STORES:
            path, line = config.origins.get("REPLAY_CACHE_URL", (config.path, None))
            problem = f"REPLAY_CACHE_URL: no replay store for {settings.scheme!r} " + (
                f"(this fwknopd has: {', '.join(STORES)})"
            )
            raise ConfigError([Problem(path, line, problem)])
        return settings


def _sqlite(settings: ReplaySettings) -> ReplayStore:
    """The SQLite cache: at the URL's path (``sqlite:///var/lib/...``), else ``REPLAY_DB_FILE``."""
    path = urlsplit(settings.url).path if settings.url else None
    legacy = settings.legacy_file
    return sqlite.ReplayCache(
        Path(path) if path else settings.path,
        max_age=settings.max_age,
        legacy_file=legacy if legacy is not None and legacy.exists() else None,
    )


# scheme -> the store's opener
STORES: dict[str, Callable[[ReplaySettings], ReplayStore]] = {"sqlite": _sqlite}


def open_store(settings: ReplaySettings) -> ReplayStore | None:
    """The store ``settings`` choose, opened; None when the cache is off."""
    if not settings.enabled:
        return None
    return STORES[settings.scheme](settings)
