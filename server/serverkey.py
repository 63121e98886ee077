"""The x25519 server key file: written 0600 from its first byte, read only while private.

The file (docs/x25519-spa.md §8) holds one ``x25519-priv:`` line and, as a
comment, the public key to give clients. ``fwknopd --key-gen-server`` makes
it; the daemon reads it at config load (``SERVER_PRIVATE_KEY_FILE``), when
``client_keyring`` derives every client's packet key once, for the whole
life of that configuration (a SIGHUP builds a new keyring with the new one).

Writing: the key goes to a temporary file in the same directory, opened
``O_EXCL`` with mode 0600 (whatever the umask) so no byte of it is ever
readable by anyone else, then fsynced and hard-linked into place. The link
fails if the name exists, so an existing key is never overwritten (every
client would have to change) and no half-written key file is ever visible.

Reading refuses what is not private: a symbolic link, anything but a
regular file, a file of another user (root's is fine: the daemon runs as
root), or any access for group or others. Problems are ``ConfigError``s
naming the file and line, never quoting key material.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from fwknop_core import UsageError, X25519Keyring, X25519PrivateKey, X25519SharedKey

from .access import AccessStanza, ClientKey
from .config import DEFAULT_CONF_DIR, ServerConfig
from .errors import ConfigError, Problem, Problems

__all__ = [
    "DEFAULT_SERVER_KEY_FILE",
    "client_keyring",
    "key_gen_server",
    "read_server_key",
    "server_key_text",
    "write_private",
    "write_server_key",
]

DEFAULT_SERVER_KEY_FILE = Path(DEFAULT_CONF_DIR) / "server_x25519.key"
_PRIVATE_PREFIX = "x25519-priv:"
_MAX_SIZE = 1 << 16


def _problem(path: Path, message: str, line: int | None = None) -> ConfigError:
    return ConfigError([Problem(path, line, message)])


def server_key_text(key: X25519PrivateKey) -> str:
    """The file's contents for ``key``."""
    return (
        "# fwknop-tui x25519 server key: keep this file secret (mode 0600)\n"
        f"{key.to_text()}\n"
        f"# public key (give it to clients): {key.public_key.to_text()}\n"
    )


def write_server_key(path: Path, key: X25519PrivateKey) -> None:
    """Create ``path`` holding ``key``, mode 0600; ``ConfigError`` if it exists or cannot be."""
    write_private(path, server_key_text(key).encode("ascii"))


def write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` to ``path``, mode 0600 from its first byte; ``ConfigError`` if it cannot be.

    ``replace``: an existing file of that name is replaced (atomically);
    otherwise it is kept and ``ConfigError`` says so.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        raise _problem(path.parent, "directory does not exist") from None
    except OSError as exc:
        raise _problem(path, f"cannot be written: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask can only have taken bits away: say it exactly
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if replace:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)
        except FileExistsError:
            raise _problem(
                path, "exists: remove it first to make a new key (every client then needs it)"
            ) from None
        except OSError as exc:
            raise _problem(path, f"cannot be written: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):  # the new name, on disk (best effort)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read_private(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _problem(
            path, "does not exist: make one with fwknopd --key-gen-server FILE"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _problem(path, "is a symbolic link: name the file itself") from None
        raise _problem(path, f"cannot be read: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _problem(path, "is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if st.st_uid not in (0, os.geteuid()):
            raise _problem(path, f"belongs to another user (uid {st.st_uid})")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise _problem(path, f"is open to other users (mode {mode:04o}): chmod 600 {path}")
        raw = fh.read(_MAX_SIZE + 1)
    if len(raw) > _MAX_SIZE:
        raise _problem(path, "is too large to be a key file")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise _problem(path, "is not ASCII text") from None


def read_server_key(path: Path) -> X25519PrivateKey:
    """The server's private key from ``path``; ``ConfigError`` says what is wrong and where."""
    found: tuple[int, X25519PrivateKey] | None = None
    for number, raw in enumerate(_read_private(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_PRIVATE_PREFIX):
            raise _problem(path, f"expected {_PRIVATE_PREFIX}<base64> or a # comment", number)
        if found is not None:
            raise _problem(path, f"a second private key (the first is on line {found[0]})", number)
        try:
            found = (number, X25519PrivateKey.from_text(line))
        except UsageError as exc:
            raise _problem(path, str(exc), number) from None
    if found is None:
        raise _problem(path, f"holds no {_PRIVATE_PREFIX} line")
    return found[1]


def client_keyring(
    config: ServerConfig, stanzas: tuple[AccessStanza, ...]
) -> X25519Keyring[AccessStanza] | None:
    """Every stanza's x25519 clients by key id, each client's key derived once; ``ConfigError``.

    None when no stanza names a ``CLIENT_PUBLIC_KEY`` and fwknopd.conf does
    not name a server key file: such a server has no x25519 clients (and
    needs no key file). A stanza keeps its place among a key's owners, so
    the stanzas that share a client key are tried in file order.
    """
    named = [(client, stanza) for stanza in stanzas for client in stanza.client_keys]
    explicit = "SERVER_PRIVATE_KEY_FILE" in config.origins
    if not named and not explicit:
        return None
    path = config.file("SERVER_PRIVATE_KEY_FILE")
    try:
        server = read_server_key(path)
    except ConfigError as exc:
        if explicit or not named:
            raise
        first = named[0][0]
        raise ConfigError(
            [
                *exc.problems,
                Problem(
                    first.path,
                    first.line,
                    "CLIENT_PUBLIC_KEY needs the server's x25519 key: make it with fwknopd "
                    "--key-gen-server, or name it in fwknopd.conf (SERVER_PRIVATE_KEY_FILE)",
                ),
            ]
        ) from None
    try:
        return X25519Keyring(server, [(client.public, stanza) for client, stanza in named])
    except UsageError:
        pass
    # which key(s): the keyring's own words quote keys; these name the lines instead
    problems = Problems()
    by_id: dict[bytes, ClientKey] = {}
    for client, _stanza in named:
        try:
            ident = X25519SharedKey.for_server(server, client.public).key_id
        except UsageError:
            why = "is not a usable X25519 public key (a low-order point): ask for the real one"
            problems.add(client.path, client.line, f"CLIENT_PUBLIC_KEY {why}")
            continue
        first = by_id.setdefault(ident, client)
        if first.public != client.public:  # the same key in two stanzas is fine
            problems.add(client.path, client.line, "CLIENT_PUBLIC_KEY has the same key id as "
                         f"the key at {first.where()}: drop one of them")  # fmt: skip
    problems.raise_if_any()
    raise AssertionError("the keyring refused keys that each derive")  # pragma: no cover


def key_gen_server(
    value: str,
    out: TextIO,
    err: TextIO,
    *,
    rng: Callable[[int], bytes] | None = None,
) -> int:
    """``fwknopd --key-gen-server [FILE]``: write a new key, print its public key; exit status."""
    path = Path(value) if value else DEFAULT_SERVER_KEY_FILE
    key = X25519PrivateKey.generate(rng)
    try:
        write_server_key(path, key)
    except ConfigError as exc:
        message = str(exc)
        if path.exists():
            with contextlib.suppress(ConfigError):
                public = read_server_key(path).public_key.to_text()
                message = (
                    f"{path}: exists (its public key is {public}): remove it first to make a "
                    "new key (every client then needs the new one)"
                )
        err.write(f"fwknopd: {message}\n")
        return 1
    out.write(f"{key.public_key.to_text()}\n")
    err.write(
        f"fwknopd: wrote the x25519 server key to {path} (mode 0600). Give clients the public "
        "key above (server_public_key in their profile) and name the file in fwknopd.conf: "
        f"SERVER_PRIVATE_KEY_FILE {path}\n"
    )
    return 0
