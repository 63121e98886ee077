"""Where keys live: the ``SecretStore`` protocol, the OS keyring, and memory (tests).

Keyring layout: service ``fwknop-tui``, one entry per profile and key, the
user name ``<profile>/<slot>`` with slot ``rijndael``, ``hmac``,
``gpg-signing-pw`` or ``x25519``. Rijndael and HMAC entries hold the key
bytes as padded base64 (whatever the key was first written as); the GnuPG
signing entry holds the passphrase text; the x25519 entry holds the private
key's ``x25519-priv:`` text.

Speed. ``keyring.get_keyring()`` discovers a backend by importing and
probing every one it knows (about 150 ms), and ``import keyring`` alone pulls
in urllib, ssl and email through jaraco.context (about 70 ms here). So:

* the backend is chosen once and remembered (``keyring-backend`` in the
  cache directory, along with the keyringrc.cfg it was chosen under);
  later runs instantiate that class directly, without discovery. The
  standard ``PYTHON_KEYRING_BACKEND`` variable is honoured the same way.
* when that backend is keyring's own Secret Service backend, reads go
  straight to the Secret Service (``_secret_service``: two D-Bus round
  trips over jeepney), with the exact attributes keyring uses (``service``,
  ``username``), so entries written by either are read by both. Anything
  unusual (a locked collection, a D-Bus error, ``KEYRING_PROPERTY_*``
  settings) falls back to keyring itself, which then unlocks, prompts or
  reports the error as it always does. Writes and deletes always go
  through keyring.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from .._log import get_logger
from ..errors import ClientError, KeyMissingError, KeyringLockedError, NoKeyringError

__all__ = [
    "SECRET_SERVICE_BACKEND",
    "SERVICE",
    "SLOTS",
    "SLOT_PREFIX",
    "KeyringStore",
    "MemoryStore",
    "SecretStore",
    "entry_name",
]

log = get_logger(__name__)

SERVICE = "fwknop-tui"
SLOTS = ("rijndael", "hmac", "gpg-signing-pw", "x25519")
# slot -> the profile fields ``<prefix>_command`` / ``<prefix>_file`` that can supply it
# instead of the keyring (an x25519 private key comes from key_command / key_file)
SLOT_PREFIX = {
    "rijndael": "key",
    "hmac": "hmac_key",
    "gpg-signing-pw": "gpg_signing_pw",
    "x25519": "key",
}
SECRET_SERVICE_BACKEND = "keyring.backends.SecretService.Keyring"  # noqa: S105 - a class name
_BACKEND_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
NO_KEYRING_HELP = (
    "no usable keyring backend{why}: on a desktop, log in to a session with a Secret Service "
    "(GNOME Keyring, KeePassXC); on a headless box run fwknop inside `dbus-run-session` after "
    "`gnome-keyring-daemon --unlock`, or set PYTHON_KEYRING_BACKEND, or give the profile a "
    "key_command or key_file"
)


def entry_name(profile: str, slot: str) -> str:
    """The keyring user name of one key of one profile."""
    if slot not in SLOTS:
        raise ValueError(f"unknown key slot {slot!r}")
    return f"{profile}/{slot}"


class SecretStore(Protocol):
    """What the wallet needs from a place that keeps secrets."""

    def get_many(self, profile: str, slots: Iterable[str]) -> dict[str, str | None]:
        """The stored values of these slots (None where there is no entry)."""
        ...

    def set(self, profile: str, slot: str, value: str) -> None:
        """Store (or replace) one value."""
        ...

    def delete(self, profile: str, slot: str) -> bool:
        """Delete one entry; False if there was none."""
        ...

    def describe(self) -> str:
        """Where the secrets go, for messages (never a secret)."""
        ...


class MemoryStore:
    """A ``SecretStore`` in a dict: unit tests and throw-away wallets."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self.entries)} entries>)"

    def get_many(self, profile: str, slots: Iterable[str]) -> dict[str, str | None]:
        """Values of these slots."""
        return {s: self.entries.get((SERVICE, entry_name(profile, s))) for s in slots}

    def set(self, profile: str, slot: str, value: str) -> None:
        """Store one value."""
        self.entries[(SERVICE, entry_name(profile, slot))] = value

    def delete(self, profile: str, slot: str) -> bool:
        """Delete one entry."""
        return self.entries.pop((SERVICE, entry_name(profile, slot)), None) is not None

    def describe(self) -> str:
        """Where secrets go."""
        return "memory"


def _keyring_config_file() -> Path:
    """keyring's own keyringrc.cfg on Linux (``keyring.util.platform_.config_root``)."""
    root = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(root) / "python_keyring" / "keyringrc.cfg"


def _config_stamp() -> str:
    try:
        st = _keyring_config_file().stat()
    except OSError:
        return "none"
    return f"{st.st_mtime_ns}:{st.st_size}"


class KeyringStore:
    """A ``SecretStore`` in the OS keyring, through the ``keyring`` library.

    ``backend`` names a keyring backend class to use (as
    ``PYTHON_KEYRING_BACKEND`` does); ``hint_file`` is where the discovered
    backend is remembered (None: the cache directory; pass a path to move
    it, or ``remember=False`` to always discover).
    """

    def __init__(
        self,
        *,
        backend: str | None = None,
        hint_file: Path | None = None,
        remember: bool = True,
    ) -> None:
        self._wanted = backend or os.environ.get("PYTHON_KEYRING_BACKEND") or None
        self._hint_file = hint_file
        self._remember = remember
        self._backend: Any = None

    def __repr__(self) -> str:
        return f"KeyringStore(service={SERVICE!r})"

    def describe(self) -> str:
        """Where secrets go."""
        return f"the keyring (service {SERVICE!r})"

    # -- choosing the backend -------------------------------------------------

    def _hint_path(self) -> Path:
        if self._hint_file is not None:
            return self._hint_file
        from .locations import cache_dir  # noqa: PLC0415

        return cache_dir() / "keyring-backend"

    def _read_hint(self) -> str | None:
        if not self._remember:
            return None
        try:
            name, stamp = self._hint_path().read_text(encoding="ascii").split()[:2]
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not re.fullmatch(_BACKEND_NAME, name) or stamp != _config_stamp():
            return None
        return name

    def _write_hint(self, name: str) -> None:
        if not self._remember:
            return
        path = self._hint_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(f"{name} {_config_stamp()}\n", encoding="ascii")
        except OSError as exc:  # a cache: failing to write it only costs speed
            log.debug("cannot remember the keyring backend in %s: %s", path, exc)

    def _forget_hint(self) -> None:
        with contextlib.suppress(OSError):
            self._hint_path().unlink()

    def backend_name(self) -> str | None:
        """The backend class that will be used without discovery, if known."""
        return self._wanted or self._read_hint()

    def backend(self) -> Any:
        """The keyring backend instance (configured, remembered, or discovered once)."""
        if self._backend is not None:
            return self._backend
        try:
            import keyring.core  # noqa: PLC0415 - only when a keyring is really needed
            from keyring.backends import fail  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - keyring is a dependency
            raise NoKeyringError(NO_KEYRING_HELP.format(why=f" ({exc})")) from None
        name = self.backend_name()
        if name is not None:
            try:
                self._backend = keyring.core.load_keyring(name)
                log.debug("keyring backend %s (no discovery)", name)
                return self._backend
            except Exception as exc:
                if self._wanted:
                    raise NoKeyringError(
                        NO_KEYRING_HELP.format(why=f" ({name} is not usable: {exc})")
                    ) from None
                log.debug("remembered keyring backend %s is not usable: %s", name, exc)
                self._forget_hint()
        backend = keyring.core.get_keyring()
        self._backend = backend
        cls = type(backend)
        if not isinstance(backend, fail.Keyring) and cls.__name__ != "ChainerBackend":
            self._write_hint(f"{cls.__module__}.{cls.__qualname__}")
        return backend

    # -- operations ----------------------------------------------------------

    def _call(self, what: str, func: Any, *args: str) -> Any:
        from keyring import errors  # noqa: PLC0415

        try:
            return func(*args)
        except errors.NoKeyringError:
            self._forget_hint()
            raise NoKeyringError(NO_KEYRING_HELP.format(why="")) from None
        except errors.KeyringLocked:
            raise KeyringLockedError(
                f"the keyring is locked and was not unlocked while trying to {what}: unlock it "
                "(log in to the desktop, or `gnome-keyring-daemon --unlock`) and try again"
            ) from None
        except errors.InitError as exc:
            raise NoKeyringError(NO_KEYRING_HELP.format(why=f" ({exc})")) from None
        except errors.PasswordDeleteError:
            return False
        except ClientError:
            raise
        except Exception as exc:
            raise KeyMissingError(
                f"the keyring failed while trying to {what}: {type(exc).__name__}"
            ) from None

    def get_many(self, profile: str, slots: Iterable[str]) -> dict[str, str | None]:
        """Read several entries, through the fast Secret Service path when it applies."""
        slots = list(slots)
        names = {s: entry_name(profile, s) for s in slots}
        if self.backend_name() == SECRET_SERVICE_BACKEND and not _keyring_properties_set():
            found = _secret_service_read(list(names.values()))
            if found is not None:
                log.debug("read %d keyring entries from the Secret Service directly", len(found))
                return {s: found[n] for s, n in names.items()}
            log.debug("Secret Service fast path declined; asking keyring")
        backend = self.backend()
        return {
            s: self._call(f"read {SERVICE}/{n}", backend.get_password, SERVICE, n)
            for s, n in names.items()
        }

    def set(self, profile: str, slot: str, value: str) -> None:
        """Store one value in the keyring."""
        name = entry_name(profile, slot)
        backend = self.backend()
        self._call(f"store {SERVICE}/{name}", backend.set_password, SERVICE, name, value)

    def delete(self, profile: str, slot: str) -> bool:
        """Delete one entry; False if there was none."""
        name = entry_name(profile, slot)
        backend = self.backend()
        result = self._call(f"delete {SERVICE}/{name}", backend.delete_password, SERVICE, name)
        return result is not False


def _keyring_properties_set() -> bool:
    return any(k.startswith("KEYRING_PROPERTY_") for k in os.environ)


def _secret_service_read(names: list[str]) -> dict[str, str | None] | None:
    """Read entries as keyring's Secret Service backend stores them; None: ask keyring."""
    try:
        from . import _secret_service  # noqa: PLC0415
    except ImportError:  # no jeepney: not Linux
        return None
    try:
        return _secret_service.read(SERVICE, names)
    except Exception as exc:
        log.debug("Secret Service fast path: %s", type(exc).__name__)
        return None
