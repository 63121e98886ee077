"""Exit codes (an API: scripts branch on them) and the errors that map to them.

Every error a user can meet is a ``ClientError`` whose ``str`` is one line
naming what is wrong and, where there is one, how to fix it. None of them
ever carries key material: messages name profiles, files and fields only.
"""

from __future__ import annotations

import enum

__all__ = [
    "ClientError",
    "ClientUsageError",
    "ConfigFileError",
    "ExitCode",
    "KeyMissingError",
    "KeyringLockedError",
    "NoKeyringError",
    "ProfileExistsError",
    "ResolveError",
    "SendError",
    "UnknownProfileError",
    "VerifyTimeoutError",
]


class ExitCode(enum.IntEnum):
    """What ``fwknop`` returns; documented in the README and stable."""

    OK = 0
    FAILURE = 1  # anything not listed below
    USAGE = 2  # bad command line or field value
    NO_SUCH_PROFILE = 3
    CONFIG = 4  # profiles.toml unreadable, not TOML, or an invalid profile
    KEY_MISSING = 5  # no key for the profile (keyring entry, command, file)
    KEYRING_LOCKED = 6
    NO_KEYRING = 7  # no usable keyring backend
    RESOLVE = 8  # host name or external address could not be resolved
    SEND = 9  # the packet could not be sent
    VERIFY_TIMEOUT = 10  # knocked, but the port never answered
    INTERRUPTED = 130


class ClientError(Exception):
    """A failure the user can act on; ``exit_code`` says which kind."""

    exit_code = ExitCode.FAILURE


class ClientUsageError(ClientError):
    """A bad option or field value."""

    exit_code = ExitCode.USAGE


class ProfileExistsError(ClientUsageError):
    """A profile of that name already exists."""


class UnknownProfileError(ClientError):
    """No profile of that name."""

    exit_code = ExitCode.NO_SUCH_PROFILE


class ConfigFileError(ClientError):
    """profiles.toml cannot be used: ``path:line: key: message``."""

    exit_code = ExitCode.CONFIG

    def __init__(
        self, path: str, message: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.message = message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class KeyMissingError(ClientError):
    """A key the profile needs is not available."""

    exit_code = ExitCode.KEY_MISSING


class KeyringLockedError(ClientError):
    """The keyring is locked and could not be unlocked."""

    exit_code = ExitCode.KEYRING_LOCKED


class NoKeyringError(ClientError):
    """No usable keyring backend on this machine."""

    exit_code = ExitCode.NO_KEYRING


class ResolveError(ClientError):
    """A host name or the external address could not be resolved."""

    exit_code = ExitCode.RESOLVE


class SendError(ClientError):
    """The packet could not be built or sent."""

    exit_code = ExitCode.SEND


class VerifyTimeoutError(ClientError):
    """The knock went out but the probed port never answered."""

    exit_code = ExitCode.VERIFY_TIMEOUT
