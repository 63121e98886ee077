"""Replay stores: where the digests of packets already seen are kept, chosen by configuration.

Every store speaks ``vocab.ReplayStore``: ``add`` records a digest and says
whether it was new, in one step (atomic where the store is shared), and the
pipeline never asks anything else of a store while deciding (``seen`` only
in ``--test`` mode). Only packets that decrypted (and so passed the HMAC,
where the stanza has one) ever reach a store: junk costs it nothing.

``REPLAY_CACHE_URL`` chooses the store by its scheme (``STORES``); unset,
the SQLite cache at ``REPLAY_DB_FILE``. A new store is a module with an
``open_store(settings)`` and one line in ``STORES``. ``redis://`` and
``rediss://`` (``redis.py``): a cache shared by a fleet of gateways, with
the SQLite cache beside it for this host (and for when Redis is down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..config import ServerConfig
from ..errors import ConfigError, Problem
from ..vocab import ReplayStore
from . import redis, sqlite

__all__ = ["REMOTE", "STORES", "ReplaySettings", "local_store", "open_store"]


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """What fwknopd.conf says about the replay cache."""

    enabled: bool = True  # ENABLE_DIGEST_PERSISTENCE (and not --test)
    url: str | None = None  # REPLAY_CACHE_URL; None: SQLite at ``path``
    path: Path | None = None  # REPLAY_DB_FILE
    legacy_file: Path | None = None  # DIGEST_FILE, fwknopd's own cache, imported if present
    max_age: int | None = 120  # how long a packet can be replayed (None: for ever)
    # a shared store (Redis): where the password is, key prefix, whether it may be stood
    # in for by the local cache when it is down, call timeout, clock skew allowed
    password_file: Path | None = None  # REPLAY_CACHE_PASSWORD_FILE
    prefix: str = "fwknop:"  # REPLAY_CACHE_PREFIX
    required: bool = False  # REPLAY_CACHE_REQUIRED
    timeout_ms: int = 50  # REPLAY_CACHE_TIMEOUT
    skew: int = 30  # REPLAY_CACHE_SKEW

    @property
    def scheme(self) -> str:
        """The store ``url`` names (``sqlite`` when unset)."""
        return urlsplit(self.url).scheme if self.url else "sqlite"

    @classmethod
    def from_config(cls, config: ServerConfig, *, test_mode: bool = False) -> ReplaySettings:
        """The replay settings of ``config``; ``ConfigError`` for a store we do not have."""
        url = config.text("REPLAY_CACHE_URL")
        password = config.text("REPLAY_CACHE_PASSWORD_FILE")
        settings = cls(
            enabled=config.flag("ENABLE_DIGEST_PERSISTENCE") and not test_mode,
            url=url,
            path=_db_file(config),
            legacy_file=config.file("DIGEST_FILE"),
            max_age=config.max_packet_age,
            password_file=Path(password) if password else None,
            prefix=config.required("REPLAY_CACHE_PREFIX"),
            required=config.flag("REPLAY_CACHE_REQUIRED"),
            timeout_ms=config.number("REPLAY_CACHE_TIMEOUT"),
            skew=config.number("REPLAY_CACHE_SKEW"),
        )

        def problem(name: str, text: str) -> ConfigError:
            path, line = config.origins.get(name, (config.path, None))
            return ConfigError([Problem(path, line, text)])

        if settings.scheme not in STORES:
            raise problem(
                "REPLAY_CACHE_URL",
                f"REPLAY_CACHE_URL: no replay store for {settings.scheme!r} "
                f"(this fwknopd has: {', '.join(STORES)})",
            )
        if settings.scheme in REMOTE:
            why = redis.url_problem(settings)
            if why is not None:
                raise problem("REPLAY_CACHE_URL", f"REPLAY_CACHE_URL: {why}")
            why = redis.password_file_problem(settings)
            if why is not None:
                raise problem("REPLAY_CACHE_PASSWORD_FILE", f"REPLAY_CACHE_PASSWORD_FILE: {why}")
        return settings


def _db_file(config: ServerConfig) -> Path:
    """Where the SQLite cache is: ``REPLAY_DB_FILE`` as set, else beside the digest file.

    With fwknopd's default ``DIGEST_FILE`` it is ``$FWKNOP_RUN_DIR/replay.sqlite``,
    as it always was; a ``DIGEST_FILE`` (or ``-d``) of its own gives the cache a
    place of its own, ``DIGEST_FILE.sqlite``, so two daemons with different
    digest files never share one by accident.
    """
    if "REPLAY_DB_FILE" in config.origins:
        return config.file("REPLAY_DB_FILE")
    digest = config.file("DIGEST_FILE")
    if digest == config.default_file("DIGEST_FILE"):
        return config.file("REPLAY_DB_FILE")
    return digest.with_name(f"{digest.name}.sqlite")


def _sqlite(settings: ReplaySettings) -> ReplayStore:
    """The SQLite cache: at the URL's path (``sqlite:///var/lib/...``), else ``REPLAY_DB_FILE``."""
    path = urlsplit(settings.url).path if settings.url else None
    legacy = settings.legacy_file
    return sqlite.ReplayCache(
        Path(path) if path else settings.path,
        max_age=settings.max_age,
        legacy_file=legacy if legacy is not None and legacy.exists() else None,
    )


def local_store(settings: ReplaySettings) -> sqlite.ReplayCache:
    """This host's own SQLite cache (``REPLAY_DB_FILE``): beside a shared store, or alone."""
    legacy = settings.legacy_file
    return sqlite.ReplayCache(
        settings.path,
        max_age=settings.max_age,
        legacy_file=legacy if legacy is not None and legacy.exists() else None,
    )


# scheme -> the store's opener
STORES: dict[str, Callable[[ReplaySettings], ReplayStore]] = {
    "sqlite": _sqlite,
    "redis": lambda s: redis.open_store(s, local_store(s)),
    "rediss": lambda s: redis.open_store(s, local_store(s)),
}
REMOTE = frozenset({"redis", "rediss"})  # schemes of a store shared between gateways


def open_store(settings: ReplaySettings) -> ReplayStore | None:
    """The store ``settings`` choose, opened; None when the cache is off."""
    if not settings.enabled:
        return None
    return STORES[settings.scheme](settings)
