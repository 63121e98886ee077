"""Profiles: named knock targets in ``profiles.toml``, read with tomllib, written with tomlkit.

Who reads what:

* ``ProfileStore.get`` / ``names`` parse the file with the stdlib ``tomllib``
  and validate only the profile asked for, so one broken profile does not
  stop the others. What tomllib made of the file is kept in the cache
  directory (``profiles.marshal``: marshal, a builtin, loads in
  microseconds) together with the exact text it was made from; a run whose
  file is the same text to the byte uses it and skips importing tomllib
  (and datetime), the largest import of ``fwknop send`` after the crypto.
  Any other text, an unreadable or foreign cache, is parsed as usual.
* ``ProfileStore.problems`` validates everything and reports every problem
  (``fwknop check``).
* Every change (add, update, rename, remove, import) goes through
  ``tomlkit``, imported only then, so the user's comments, blank lines and
  order survive. Writes are atomic (a temp file in the same directory, then
  ``os.replace``), keep the file's mode, hold an advisory lock, and are
  refused while the current file does not parse: a damaged file is never
  overwritten.

Errors name the file, the line and the key (``path:line: key: message``).
``tomllib`` gives no positions for values, so ``_line_of`` finds the key's
line in the text when an error needs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwknop_core import DEFAULT_KNOCK_OFFSET, DigestType, EncryptionMode, HmacType

from ..errors import ClientUsageError, ConfigFileError, ProfileExistsError, UnknownProfileError
from . import validate as v
from .locations import profiles_path

__all__ = [
    "DEFAULT_RESOLVE_URL",
    "FIELDS",
    "IPV6_NAT_HOST",
    "Profile",
    "ProfileStore",
    "atomic_write",
    "check_field",
    "check_profile",
    "default_of",
    "parsed_toml",
]

DEFAULT_RESOLVE_URL = "https://www.cipherdyne.org/cgi-bin/myip"
DEFAULT_USER_AGENT = "Fwknop/2.6.10"


IPV6_NAT_HOST = (
    "the C fwknopd 2.6 refuses an IPv6 NAT host: use an IPv4 address or a name, "
    'or set server_type = "fwknop-tui" if the server runs ours'
)


@dataclass(frozen=True)
class Profile:
    """One knock target: every field of a ``[profiles.NAME]`` table, validated."""

    name: str
    host: str
    description: str = ""
    # target
    port: int = 62201
    transport: v.Transport = v.Transport.UDP
    random_port: bool = False
    source_port: int = 0
    address_family: str = "any"
    server_type: str = "fwknopd"
    # access
    access: tuple[str, ...] = ("tcp/22",)
    allow_ip: str = "source"
    resolve_url: str = DEFAULT_RESOLVE_URL
    client_timeout: int = 0
    username: str = ""
    time_offset: int = 0
    server_command: str = ""
    nat_access: str = ""
    nat_port: int = 0
    nat_random_port: bool = False
    nat_local: bool = False
    # crypto
    encryption: str = "rijndael"
    server_public_key: str = ""
    encryption_mode: EncryptionMode = EncryptionMode.CBC
    digest_type: DigestType = DigestType.SHA256
    hmac_type: HmacType | None = HmacType.SHA256
    key_format: str = "base64"
    key_command: tuple[str, ...] = ()
    hmac_key_command: tuple[str, ...] = ()
    gpg_signing_pw_command: tuple[str, ...] = ()
    key_file: str = ""
    hmac_key_file: str = ""
    gpg_signing_pw_file: str = ""
    gpg_recipient: str = ""
    gpg_signer: str = ""
    gpg_home: str = ""
    gpg_exe: str = "gpg"
    # knock and verify
    verify: str = ""
    verify_retries: int = 5
    verify_interval: float = 1.0
    keep_open: int = 0
    # advanced
    http_proxy: str = ""
    user_agent: str = DEFAULT_USER_AGENT
    spoof_source: str = ""
    icmp_type: int = 0
    icmp_code: int = 0
    # fwknop 1.x knock sequences (mode = "knock"): encrypted, or shared when a sequence is given
    mode: str = "spa"
    knock_sequence: tuple[str, ...] = ()
    knock_offset: int = DEFAULT_KNOCK_OFFSET
    knock_delay: float = 1.0
    knock_rotate_proto: bool = False
    # where the profile came from (not a field of the file)
    source_line: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            name, message = problems[0]
            raise v.FieldError(name, message)

    # -- cross-field rules -------------------------------------------------

    def problems(self) -> list[tuple[str, str]]:
        """Every (field, message) that makes this combination unusable."""
        out: list[tuple[str, str]] = []
        gpg = self.encryption == "gpg"
        if gpg and not self.gpg_recipient:
            out.append(("gpg_recipient", 'encryption = "gpg" needs gpg_recipient (the server key)'))
        if self.uses_x25519:
            if self.server_type == "fwknopd":
                out.append(
                    (
                        "encryption",
                        "x25519 is fwknop-tui's own public-key mode: the C fwknopd 2.6 cannot "
                        'read it. Set server_type = "fwknop-tui" if the server runs ours',
                    )
                )
            if not self.server_public_key:
                out.append(
                    (
                        "server_public_key",
                        'encryption = "x25519" needs the server\'s public key (x25519-pub:...; '
                        "fwknopd --key-gen-server prints it)",
                    )
                )
        elif not gpg and self.encryption_mode is EncryptionMode.LEGACY and self.hmac_type:
            out.append(
                (
                    "encryption_mode",
                    'legacy mode cannot be combined with an HMAC: set hmac_type = "none"',
                )
            )
        nat = bool(self.nat_access) or self.nat_local
        if self.server_command:
            if nat:
                out.append(("server_command", "a server command cannot be combined with NAT"))
        elif not self.access:
            out.append(("access", "give at least one proto/port (or a server_command)"))
        if nat and len(self.access) != 1:
            out.append(("access", "NAT access takes exactly one proto/port"))
        if self.nat_local and self.nat_access:
            out.append(("nat_local", "nat_local forwards to the server itself: drop nat_access"))
        if self.nat_port and self.nat_random_port:
            out.append(("nat_port", "choose nat_port or nat_random_port, not both"))
        if (self.nat_port or self.nat_random_port) and not nat:
            out.append(("nat_port", "nat_port and nat_random_port need nat_access or nat_local"))
        if self.spoof_source and not self.transport.raw:
            out.append(("spoof_source", 'needs transport = "udpraw" or "icmp"'))
        if self.http_proxy and self.transport is not v.Transport.HTTP:
            out.append(("http_proxy", 'needs transport = "http"'))
        if self.transport.raw and self.address_family == "ipv6":
            out.append(("transport", f"{self.transport.value} is IPv4 only"))
        if ":" in self.allow_ip and not self.takes_ipv6_allow_ip:
            out.append(
                (
                    "allow_ip",
                    "the C fwknopd 2.6 refuses an IPv6 allow IP: use an IPv4 address or "
                    '"source", or set server_type = "fwknop-tui" if the server runs ours',
                )
            )
        if self.nat_access and ":" in self.nat_host and not self.takes_ipv6_allow_ip:
            out.append(("nat_access", IPV6_NAT_HOST))
        for prefix in ("key", "hmac_key", "gpg_signing_pw"):
            if getattr(self, f"{prefix}_command") and getattr(self, f"{prefix}_file"):
                out.append((f"{prefix}_file", f"choose {prefix}_command or {prefix}_file"))
        out.extend(self._knock_problems())
        return out

    def _knock_problems(self) -> list[tuple[str, str]]:
        """The rules of mode = "knock" (fwknop 1.x sequences), and of its fields elsewhere."""
        if self.mode != "knock":
            knock_fields = ("knock_sequence", "knock_rotate_proto")
            return [(f, 'needs mode = "knock"') for f in knock_fields if getattr(self, f)]
        out: list[tuple[str, str]] = []
        if self.encryption != "rijndael":
            out.append(("encryption", "a knock sequence has its own 1.x encryption: rijndael"))
        if self.server_command:
            out.append(("server_command", "a knock sequence cannot carry a command"))
        if self.nat_access or self.nat_local:
            out.append(("nat_access", "a knock sequence cannot ask for NAT"))
        if self.knock_sequence:
            if self.knock_rotate_proto:
                out.append(("knock_rotate_proto", "only for encrypted sequences"))
            return out
        if len(self.access) != 1:
            out.append(("access", "an encrypted knock sequence carries exactly one proto/port"))
        if self.key_format != "passphrase":
            out.append(
                (
                    "key_format",
                    "an encrypted knock sequence takes the 1.x KEY passphrase: "
                    'set key_format = "passphrase"',
                )
            )
        if ":" in self.allow_ip:
            out.append(("allow_ip", "a knock sequence carries an IPv4 allow IP"))
        return out

    # -- derived -------------------------------------------------------------

    @property
    def uses_gpg(self) -> bool:
        """GnuPG instead of Rijndael."""
        return self.encryption == "gpg"

    @property
    def uses_x25519(self) -> bool:
        """fwknop-tui's public-key mode (docs/x25519-spa.md) instead of fwknop's formats."""
        return self.encryption == "x25519"

    @property
    def nat_host(self) -> str:
        """The host the NAT field names: the server itself with nat_local, else nat_access's."""
        if self.nat_local:
            return self.host
        return v.split_hostport(self.nat_access)[0] if self.nat_access else ""

    @property
    def takes_ipv6_allow_ip(self) -> bool:
        """Whether the server takes an IPv6 allow IP: ours does, the C fwknopd 2.6 does not."""
        return self.server_type == "fwknop-tui"

    @property
    def knocks_sequence(self) -> bool:
        """A fwknop 1.x knock sequence (mode = "knock") instead of an SPA packet."""
        return self.mode == "knock"

    def key_slots(self) -> list[str]:
        """The key slots: rijndael, hmac, gpg-signing-pw, x25519 alone, or a 1.x knock key."""
        if self.knocks_sequence:  # the 1.x KEY passphrase, kept as the Rijndael key
            return [] if self.knock_sequence else ["rijndael"]
        if self.uses_x25519:
            return ["x25519"]  # no HMAC: the AEAD authenticates
        slots = [] if self.uses_gpg else ["rijndael"]
        if self.hmac_type is not None:
            slots.append("hmac")
        if self.uses_gpg and self.gpg_signer:
            slots.append("gpg-signing-pw")
        return slots

    def with_changes(self, changes: Mapping[str, Any]) -> Profile:
        """A copy with raw field values applied (each validated like the file's)."""
        clean = {k: check_field(k, raw) for k, raw in changes.items()}
        return dataclasses.replace(self, **clean)

    def without(self, names: Iterable[str]) -> Profile:
        """A copy with these fields back at their defaults."""
        reset: dict[str, Any] = {}
        for name in names:
            if name not in FIELDS or name == "host":
                raise v.FieldError(name, f"cannot unset {name!r}")
            reset[name] = _DEFAULTS[name]
        return dataclasses.replace(self, **reset)

    def renamed(self, name: str) -> Profile:
        """The same profile under another name."""
        return dataclasses.replace(self, name=v.check_profile_name(name))

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> Profile:
        """Build from a TOML table; ``FieldError`` names the first bad field."""
        v.check_profile_name(name)
        unknown = [k for k in table if k not in FIELDS]
        if unknown:
            key = unknown[0]
            close = _close(key, FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise v.FieldError(key, f"unknown field{hint}")
        if "host" not in table:
            raise v.FieldError("host", "missing: every profile needs a host")
        clean = {k: check_field(k, raw) for k, raw in table.items()}
        return cls(name=name, **clean)

    def to_table(self) -> dict[str, Any]:
        """Fields that differ from the defaults, as TOML values (``host`` always)."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if name != "host" and value == _DEFAULTS[name]:
                continue
            out[name] = to_toml_value(name, value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every field as a JSON-ready value (for ``show --json`` and the TUI)."""
        return {"name": self.name} | {n: to_toml_value(n, getattr(self, n)) for n in FIELDS}


def to_toml_value(name: str, value: Any) -> Any:
    """A field value as TOML (and JSON) writes it."""
    if name == "hmac_type":
        return "none" if value is None else value.fwknop_name
    if name == "digest_type":
        return value.fwknop_name
    if name == "encryption_mode":
        return value.label.lower()
    if name == "time_offset":
        return v.format_time_offset(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, v.Transport):
        return value.value
    return value


def _str(name: str) -> Callable[[Any], Any]:
    return lambda value: v.check_line(name, value)


def _path(name: str) -> Callable[[Any], Any]:
    return lambda value: v.check_line(name, value, max_len=4096)


def _cmd(name: str) -> Callable[[Any], Any]:
    return lambda value: () if value in ("", [], ()) else v.check_command(value, name)


def _hostport_text(name: str, *, need_port: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> str:
        if value == "":
            return ""
        v.check_hostport(value, name, need_port=need_port, need_host=False)
        return str(value).strip()

    return check


def _nat(value: Any) -> str:
    if value == "":
        return ""
    v.check_nat_access(value)
    return str(value).strip()


def _ipv4_or_empty(name: str) -> Callable[[Any], Any]:
    return lambda value: "" if value == "" else v.check_ipv4(name, value)


def _http_proxy(value: Any) -> str:
    text = v.check_line("http_proxy", value)
    if text.lower().startswith("http://"):
        text = text[len("http://") :].rstrip("/")
    if text:
        v.check_hostport(text, "http_proxy")
    return text


FIELDS: dict[str, Callable[[Any], Any]] = {
    "host": lambda x: v.check_host("host", x),
    "description": lambda x: v.check_line("description", x, max_len=1000),
    "port": lambda x: v.check_port("port", x),
    "transport": v.check_transport,
    "random_port": lambda x: v.check_bool("random_port", x),
    "source_port": lambda x: v.check_port("source_port", x, zero=True),
    "address_family": v.check_address_family,
    "server_type": v.check_server_type,
    "access": v.check_access,
    "allow_ip": v.check_allow_ip,
    "resolve_url": v.check_resolve_url,
    "client_timeout": v.check_client_timeout,
    "username": v.check_username,
    "time_offset": v.check_time_offset,
    "server_command": lambda x: v.check_line("server_command", x, max_len=190),
    "nat_access": _nat,
    "nat_port": lambda x: v.check_port("nat_port", x, zero=True),
    "nat_random_port": lambda x: v.check_bool("nat_random_port", x),
    "nat_local": lambda x: v.check_bool("nat_local", x),
    "encryption": v.check_encryption,
    "server_public_key": v.check_x25519_public_key,
    "encryption_mode": v.check_encryption_mode,
    "digest_type": v.check_digest_type,
    "hmac_type": v.check_hmac_type,
    "key_format": v.check_key_format,
    "key_command": _cmd("key_command"),
    "hmac_key_command": _cmd("hmac_key_command"),
    "gpg_signing_pw_command": _cmd("gpg_signing_pw_command"),
    "key_file": _path("key_file"),
    "hmac_key_file": _path("hmac_key_file"),
    "gpg_signing_pw_file": _path("gpg_signing_pw_file"),
    "gpg_recipient": _str("gpg_recipient"),
    "gpg_signer": _str("gpg_signer"),
    "gpg_home": _path("gpg_home"),
    "gpg_exe": lambda x: v.check_line("gpg_exe", x, max_len=4096, empty=False),
    "verify": _hostport_text("verify", need_port=True),
    "verify_retries": lambda x: v.check_int("verify_retries", x, 1, 1000),
    "verify_interval": lambda x: v.check_interval("verify_interval", x),
    "keep_open": lambda x: v.check_int("keep_open", x, 0, 86400),
    "http_proxy": _http_proxy,
    "user_agent": lambda x: v.check_line("user_agent", x, empty=False),
    "spoof_source": _ipv4_or_empty("spoof_source"),
    "icmp_type": lambda x: v.check_int("icmp_type", x, 0, 255),
    "icmp_code": lambda x: v.check_int("icmp_code", x, 0, 255),
    "mode": v.check_mode,
    "knock_sequence": v.check_knock_sequence,
    "knock_offset": v.check_knock_offset,
    "knock_delay": v.check_knock_delay,
    "knock_rotate_proto": lambda x: v.check_bool("knock_rotate_proto", x),
}
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Profile) if f.name in FIELDS
}


def default_of(name: str) -> Any:
    """A field's default value (``host`` has none: ``KeyError``)."""
    if name == "host":
        raise KeyError(name)
    return _DEFAULTS[name]


def _close(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    import difflib  # noqa: PLC0415 - error paths only

    return difflib.get_close_matches(word, list(choices), n=n)


def check_field(name: str, raw: Any) -> Any:
    """Validate one raw field value; ``FieldError`` if the name or value is bad."""
    checker = FIELDS.get(name)
    if checker is None:
        close = _close(name, FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise v.FieldError(name, f"unknown field{hint}")
    return checker(raw)


def check_profile(
    name: str, table: Mapping[str, Any]
) -> tuple[Profile | None, list[tuple[str, str]]]:
    """Validate a whole profile, reporting every problem as (field, message).

    What an editor shows inline: the problems of each field, then, once every
    field is fine on its own, every cross-field problem (``Profile.problems``).
    """
    found: list[tuple[str, str]] = []
    try:
        v.check_profile_name(name)
    except v.FieldError as exc:
        found.append(("name", exc.message))
    clean: dict[str, Any] = {}
    for key, raw in table.items():
        try:
            clean[key] = check_field(key, raw)
        except v.FieldError as exc:
            found.append((exc.field, exc.message))
    if "host" not in table:
        found.append(("host", "missing: every profile needs a host"))
    if found:
        return None, found
    draft = object.__new__(Profile)  # unvalidated, only to ask it for its problems
    for f in dataclasses.fields(Profile):
        object.__setattr__(draft, f.name, clean.get(f.name, _DEFAULTS.get(f.name, f.default)))
    object.__setattr__(draft, "name", name)
    cross = draft.problems()
    if cross:
        return None, cross
    return Profile(name=name, **clean), []


# -- the file -----------------------------------------------------------------

_TOML_LINE = r"\(at line (\d+), column \d+\)"  # patterns: re compiles and caches on first use
_HEADER = r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$"


def _header_path(text: str) -> list[str]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', text)
    return [a or b or c for a, b, c in parts]


def _line_of(text: str, profile: str, key: str | None) -> int | None:
    """The line of ``key`` in ``[profiles.<profile>]`` (or of the header), 1-based."""
    in_table = False
    header_line = None
    key_re = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=") if key else None
    for number, line in enumerate(text.splitlines(), 1):
        m = re.match(_HEADER, line)
        if m:
            in_table = _header_path(m.group(1)) == ["profiles", profile]
            if in_table:
                header_line = number
            continue
        if in_table and key_re is not None and key_re.match(line):
            return number
    return header_line


def _quote_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def atomic_write(
    path: Path, data: str | bytes, *, mode: int = 0o600, private: bool = False
) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its mode (``mode`` if new).

    ``private`` is for files that hold a key: the new file is 0600 from its
    first byte and stays 0600, whatever the mode of the file it replaces (a
    file of mode 0644 is replaced, never written into: a reader who opened
    the old one never sees the new content).
    """
    import tempfile  # noqa: PLC0415 - only writes pay for it

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        keep = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        keep = mode
    # mkstemp creates the file 0600; only a file without secrets may get a wider mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if not private and keep != 0o600:
            os.fchmod(fd, keep)
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class ProfileStore:
    """The profiles file: read fast, validate on demand, edit without losing comments."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else profiles_path()

    # -- reading -------------------------------------------------------------

    def _text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except UnicodeDecodeError:
            raise ConfigFileError(str(self.path), "is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigFileError(str(self.path), f"cannot be read: {exc.strerror}") from None

    def _parse(self, text: str) -> dict[str, Any]:
        try:
            data = parsed_toml(self.path, text)
        except ValueError as exc:  # tomllib.TOMLDecodeError (imported only on a cache miss)
            msg = str(exc)
            m = re.search(_TOML_LINE, msg)
            raise ConfigFileError(
                str(self.path),
                f"not valid TOML: {re.sub(_TOML_LINE, '', msg).strip()}",
                line=int(m.group(1)) if m else None,
            ) from None
        except RecursionError:
            raise ConfigFileError(
                str(self.path), "not valid TOML: arrays or tables nested too deeply"
            ) from None
        profiles = data.get("profiles", {})
        if not isinstance(profiles, dict):
            raise ConfigFileError(str(self.path), "'profiles' must be a table", key="profiles")
        for key in data:
            if key != "profiles":
                raise ConfigFileError(
                    str(self.path),
                    "unknown top-level key (profiles live in [profiles.NAME] tables)",
                    key=key,
                    line=_first_line(text, key),
                )
        return profiles

    def tables(self) -> dict[str, Any]:
        """The raw ``profiles`` table (name -> dict), parsed with tomllib."""
        return self._parse(self._text())

    def names(self) -> list[str]:
        """Profile names in file order."""
        return list(self.tables())

    def exists(self, name: str) -> bool:
        """Whether a profile of that name is in the file."""
        return name in self.tables()

    def get(self, name: str) -> Profile:
        """One validated profile; ``UnknownProfileError`` or ``ConfigFileError``."""
        text = self._text()
        tables = self._parse(text)
        if name not in tables:
            close = _close(name, list(tables), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = "" if self.path.exists() else f"; {self.path} does not exist yet"
            raise UnknownProfileError(f"no profile named {name!r}{hint}{where}")
        return self._build(text, name, tables[name])

    def _build(self, text: str, name: str, table: Any) -> Profile:
        if not isinstance(table, dict):
            raise ConfigFileError(
                str(self.path),
                "must be a table",
                key=f"profiles.{name}",
                line=_line_of(text, name, None),
            )
        try:
            profile = Profile.from_table(name, table)
        except v.FieldError as exc:
            line = _line_of(text, name, exc.field if exc.field in table else None)
            raise ConfigFileError(
                str(self.path), exc.message, line=line, key=f"profiles.{name}.{exc.field}"
            ) from None
        return dataclasses.replace(profile, source_line=_line_of(text, name, None))

    def all(self) -> list[Profile]:
        """Every profile, validated (the first problem raises)."""
        text = self._text()
        return [self._build(text, n, t) for n, t in self._parse(text).items()]

    def load(self) -> tuple[list[Profile], list[ConfigFileError]]:
        """Every usable profile, and the problem of each that is not (one read, one parse)."""
        text = self._text()
        good: list[Profile] = []
        bad: list[ConfigFileError] = []
        for name, table in self._parse(text).items():
            try:
                good.append(self._build(text, name, table))
            except ConfigFileError as exc:
                bad.append(exc)
        return good, bad

    def problems(self) -> list[ConfigFileError]:
        """Every problem in the file, not only the first."""
        text = self._text()
        try:
            tables = self._parse(text)
        except ConfigFileError as exc:
            return [exc]
        found: list[ConfigFileError] = []

        def problem(name: str, key: str | None, message: str) -> None:
            where = f"profiles.{name}" + (f".{key}" if key else "")
            line = _line_of(text, name, key if key in tables.get(name, {}) else None)
            found.append(ConfigFileError(str(self.path), message, key=where, line=line))

        for name, table in tables.items():
            if not isinstance(table, dict):
                problem(name, None, "must be a table")
                continue
            try:
                v.check_profile_name(name)
            except v.FieldError as exc:
                problem(name, None, exc.message)
                continue
            before = len(found)
            for key, raw in table.items():
                try:
                    check_field(key, raw)
                except v.FieldError as exc:
                    problem(name, key, exc.message)
            if "host" not in table:
                problem(name, "host", "missing: every profile needs a host")
            if len(found) == before:
                try:
                    self._build(text, name, table)
                except ConfigFileError as exc:
                    found.append(exc)
        return found

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[tuple[Any, Any, str]]:
        """Lock, parse (refusing a damaged file), yield (document, profiles table, text)."""
        import tomlkit  # noqa: PLC0415 - only edits pay for tomlkit

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            text = self._text()
            try:
                self._parse(text)
            except ConfigFileError as exc:
                raise ConfigFileError(
                    exc.path,
                    f"{exc.message}; fix the file first (nothing was changed)",
                    line=exc.line,
                    key=exc.key,
                ) from None
            doc = tomlkit.parse(text) if text else tomlkit.document()
            if "profiles" not in doc:
                doc["profiles"] = tomlkit.table(is_super_table=True)
            yield doc, doc["profiles"], text

    def _commit(self, doc: Any, check: Iterable[str]) -> None:
        import tomlkit  # noqa: PLC0415

        new_text = tomlkit.dumps(doc)
        if new_text and not new_text.endswith("\n"):
            new_text += "\n"
        tables = self._parse(new_text)  # never write what we could not read back
        for name in check:
            self._build(new_text, name, tables[name])
        atomic_write(self.path, new_text)

    @staticmethod
    def _table(profile: Profile) -> Any:
        import tomlkit  # noqa: PLC0415

        table = tomlkit.table()
        for key, value in profile.to_table().items():
            table.add(key, value)
        return table

    def add(self, profile: Profile, *, replace: bool = False) -> None:
        """Add a profile (or replace one of the same name when ``replace``)."""
        self.save_many([profile], replace=replace)

    def save_many(self, profiles: Iterable[Profile], *, replace: bool = False) -> None:
        """Add several profiles in one atomic write (all or none)."""
        profiles = list(profiles)
        with self._editing() as (doc, table, _text):
            for profile in profiles:
                if profile.name in table and not replace:
                    raise ProfileExistsError(f"a profile named {profile.name!r} already exists")
            for profile in profiles:
                if profile.name in table:
                    self._set_fields(table[profile.name], profile)
                else:
                    table[profile.name] = self._table(profile)
            self._commit(doc, [p.name for p in profiles])

    @staticmethod
    def _set_fields(table: Any, profile: Profile) -> None:
        wanted = profile.to_table()
        for key in list(table.keys()):
            if key not in wanted:
                del table[key]
        for key, value in wanted.items():
            current = table.get(key)
            if current is None or _plain(current) != value:
                table[key] = value

    def update(self, profile: Profile) -> None:
        """Write a changed profile over the one of the same name, touching only changed keys."""
        with self._editing() as (doc, table, _text):
            if profile.name not in table:
                raise UnknownProfileError(f"no profile named {profile.name!r}")
            self._set_fields(table[profile.name], profile)
            self._commit(doc, [profile.name])

    def rename(self, old: str, new: str) -> None:
        """Rename a profile in place: its comments and position stay."""
        v.check_profile_name(new)
        with self._editing() as (doc, table, text):
            if old not in table:
                raise UnknownProfileError(f"no profile named {old!r}")
            if new in table:
                raise ProfileExistsError(f"a profile named {new!r} already exists")
            new_text = _rename_header(text, old, new)
            if new_text is None:  # not a plain [profiles.OLD] header: move the table
                table[new] = table[old]
                del table[old]
                self._commit(doc, [new])
                return
            tables = self._parse(new_text)
            if tables.get(new) != self._parse(text).get(old):
                raise ClientUsageError(f"cannot rename {old!r} safely; edit {self.path} by hand")
            self._build(new_text, new, tables[new])
            atomic_write(self.path, new_text)

    def remove(self, name: str) -> None:
        """Delete a profile (its comments inside the table go with it)."""
        with self._editing() as (doc, table, _text):
            if name not in table:
                raise UnknownProfileError(f"no profile named {name!r}")
            del table[name]
            self._commit(doc, [])


def parsed_toml(path: Path, text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``, from the cache (``<stem>.marshal``: profiles.marshal,
    tui.marshal) when it was made from this very text; ``ValueError`` if it is not TOML."""
    import marshal  # noqa: PLC0415 - a builtin module: no file to load

    from .locations import cache_dir  # noqa: PLC0415

    cache = cache_dir() / f"{path.stem}.marshal"
    key = (str(path), text)
    try:
        fd = os.open(cache, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_uid == os.getuid() and not st.st_mode & 0o022:  # ours alone
                cached = marshal.loads(fh.read(1 << 22))  # noqa: S302 - our own 0600 cache
                if isinstance(cached, tuple) and len(cached) == 3 and cached[:2] == key:
                    data = cached[2]
                    if isinstance(data, dict):
                        return data
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import tomllib  # noqa: PLC0415

    data = tomllib.loads(text)
    try:
        blob = marshal.dumps((*key, data))  # ValueError for a TOML date: not cached
        atomic_write(cache, blob)
    except (OSError, ValueError):
        pass  # a cache: failing to write it only costs speed
    return data


def _plain(item: Any) -> Any:
    unwrap = getattr(item, "unwrap", None)
    return unwrap() if unwrap else item


def _first_line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"^\s*\[?\s*{re.escape(key)}\b", line):
            return number
    return None


def _rename_header(text: str, old: str, new: str) -> str | None:
    """Rewrite the single ``[profiles.OLD]`` header line, or None if there is not exactly one."""
    lines = text.splitlines(keepends=True)
    hits = []
    for i, line in enumerate(lines):
        m = re.match(_HEADER, line)
        if m and _header_path(m.group(1))[:2] == ["profiles", old]:
            if len(_header_path(m.group(1))) != 2:
                return None
            hits.append(i)
    if len(hits) != 1:
        return None
    i = hits[0]
    m = re.match(_HEADER, lines[i])
    if m is None:  # pragma: no cover - matched above
        return None
    start, end = m.span(1)
    lines[i] = lines[i][:start] + f"profiles.{_quote_key(new)}" + lines[i][end:]
    return "".join(lines)
