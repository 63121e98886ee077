"""access.conf: stanzas of fwknopd's access policy, read as fwknopd reads them (§3).

A stanza starts at a ``SOURCE`` line and runs to the next one; stanzas are
tried in file order. ``%include``, ``%include_folder`` and ``%include_keys``
work as in fwknopd. Keys become ``fwknop_core`` key objects at load time, so
the packet path never parses text. Every problem is reported with the file
and line of the offending setting, and never quotes a key.

``CLIENT_PUBLIC_KEY`` is ours (the x25519 mode, docs/x25519-spa.md): a
client's ``x25519-pub:`` key. A stanza may name several, on lines of their
own or separated by commas, so a client can rotate its key with an overlap;
a stanza with only client keys is complete. Only public keys go here: a
private key pasted by mistake is refused by name (and not quoted).

fwknop 1.x files are read too: a stanza with ``ENCRYPT_SEQUENCE`` or
``SHARED_SEQUENCE`` is a knock-sequence stanza (``knockstanza.py`` makes its
rule; ``load_policy`` returns them beside the SPA stanzas), and each 1.x
name 2.x dropped is answered by name (``legacy.py``). Extensions of ours,
in SPA stanzas: ``SOURCE`` (and ``DESTINATION``) take 1.x's ``!``
exclusions and ``NONE``; ``REQUIRE_OS`` / ``REQUIRE_OS_REGEX`` apply to SPA
packets that came over a TCP connection whose SYN was seen; 1.x's
``CMD_REGEX`` limits command messages (a Python ``re.search`` on the command
after ``IP,``; 1.x matched Perl regexes against the whole ``IP,command``);
``GPG_PATH`` and ``MAX_ACCESS_TIMEOUT`` are 1.x's names of ``GPG_EXE`` and
``FW_ACCESS_TIMEOUT``.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from fwknop_core import (
    MAX_HMAC_KEY,
    MAX_RIJNDAEL_KEY,
    MAX_SERVER_HMAC_KEY,
    EncryptionMode,
    HmacKey,
    HmacType,
    RijndaelKey,
    UsageError,
    X25519PublicKey,
    decode_key_base64,
)

from .commands import (
    MAX_CYCLE_LEN,
    CommandPolicy,
    CyclePolicy,
    lookup_group,
    lookup_user,
    split_words,
)
from .confsyntax import Invalid, Setting, is_yes, read_settings, shown_name, whole_number
from .errors import Problems
from .knock import OsRequirement
from .knockstanza import (
    BARE_FLAGS,
    SEQUENCE_NAMES,
    SPA,
    SequenceStanza,
    build_sequence,
    misplaced,
    stanza_kind,
)
from .legacy import ACCESS as LEGACY_NAMES
from .legacy import Level
from .nat import NatPolicy, parse_force_nat
from .vocab import MAX_WORDS, PROTO_NUMBERS, RunAs

__all__ = [
    "AccessPolicy",
    "AccessStanza",
    "ClientKey",
    "GpgPolicy",
    "Network",
    "SequenceStanza",
    "load_access",
    "load_policy",
    "parse_networks",
    "parse_ports",
]

_MAX_INCLUDE_DEPTH = 3
_CHANGEME = "__CHANGEME__"
_DEFAULT_FW_TIMEOUT = 30
_DEFAULT_MAX_FW_TIMEOUT = 300
_MAX_TIMER = 8388608
_KEY_NAMES = frozenset(
    {
        "KEY",
        "KEY_BASE64",
        "HMAC_KEY",
        "HMAC_KEY_BASE64",
        "GPG_DECRYPT_ID",
        "GPG_DECRYPT_PW",
        "GPG_ALLOW_NO_PW",
        "GPG_REQUIRE_SIG",
        "GPG_DISABLE_SIG",
        "GPG_IGNORE_SIG_VERIFY_ERROR",
        "GPG_REMOTE_ID",
        "GPG_FINGERPRINT_ID",
        "CLIENT_PUBLIC_KEY",
    }
)
# names a stanza may hold more than once: every line counts (the others: the last one wins)
_REPEATED = frozenset({"CLIENT_PUBLIC_KEY"})
_OTHER_NAMES = frozenset(
    {
        "SOURCE",
        "DESTINATION",
        "OPEN_PORTS",
        "RESTRICT_PORTS",
        "HMAC_DIGEST_TYPE",
        "ENCRYPTION_MODE",
        "FW_ACCESS_TIMEOUT",
        "MAX_FW_TIMEOUT",
        "ENABLE_CMD_EXEC",
        "ENABLE_CMD_SUDO_EXEC",
        "CMD_SUDO_EXEC_USER",
        "CMD_SUDO_EXEC_GROUP",
        "CMD_EXEC_USER",
        "CMD_EXEC_GROUP",
        "CMD_CYCLE_OPEN",
        "CMD_CYCLE_CLOSE",
        "CMD_CYCLE_TIMER",
        "REQUIRE_USERNAME",
        "REQUIRE_SOURCE_ADDRESS",
        "REQUIRE_SOURCE",
        "GPG_HOME_DIR",
        "GPG_EXE",
        "ACCESS_EXPIRE",
        "ACCESS_EXPIRE_EPOCH",
        "FORCE_NAT",
        "FORCE_SNAT",
        "FORCE_MASQUERADE",
        "DISABLE_DNAT",
        "FORWARD_ALL",
        # fwknop 1.x names of ours (the module docstring), and the knock-sequence keywords
        "REQUIRE_OS",
        "REQUIRE_OS_REGEX",
        "CMD_REGEX",
        "GPG_PATH",
        "MAX_ACCESS_TIMEOUT",
        "DATA_COLLECT_MODE",
        "PCAP",
        "FILE_PCAP",
        "ULOG_PCAP",
        *SEQUENCE_NAMES,
    }
)
KNOWN_NAMES = _KEY_NAMES | _OTHER_NAMES
_NAT_NAMES = ("FORCE_NAT", "FORCE_SNAT", "FORCE_MASQUERADE", "DISABLE_DNAT", "FORWARD_ALL")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``ANY``, addresses, ``addr/NN`` and ``addr/a.b.c.d``; ``ValueError`` naming each bad one.

    fwknop 1.x's forms too: ``!net`` excludes a network from the others
    (``ANY, !198.18.7.0/24``), and ``NONE`` alone is no network at all.
    """
    if text.strip().upper() == "NONE":
        return ()
    nets: list[Network] = []
    excluded: list[Network] = []
    bad: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            bad.append("empty entry")
            continue
        into = excluded if entry.startswith("!") else nets
        item = entry.removeprefix("!").strip()
        if item.upper() == "ANY":
            into.append(ipaddress.IPv4Network("0.0.0.0/0"))
            into.append(ipaddress.IPv6Network("::/0"))
            continue
        try:
            # fwknopd masks the address: 198.18.0.7/24 means 198.18.0.0/24
            into.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            bad.append(f"{item!r} is not ANY, an address or a network")
    if bad:
        raise ValueError("; ".join(bad))
    if excluded and not nets:
        raise ValueError("only '!' exclusions: say what they are excluded from (ANY, !net)")
    for gone in excluded:
        nets = _without(nets, gone)
    return tuple(nets)


def _without(nets: list[Network], gone: Network) -> list[Network]:
    """``nets`` with the addresses of ``gone`` taken out (a network list that matches the same)."""
    out: list[Network] = []
    for net in nets:
        if net.version != gone.version or not net.overlaps(gone):
            out.append(net)
        elif net.subnet_of(gone):  # type: ignore[arg-type]
            continue  # excluded whole
        else:
            out.extend(net.address_exclude(gone))  # type: ignore[arg-type]
    return out


def parse_ports(text: str) -> frozenset[tuple[str, int]]:
    """``tcp/22, udp/53`` entries; ``ValueError`` naming each bad one."""
    ports = set()
    bad: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        proto, sep, port = item.partition("/")
        proto = proto.strip().lower()
        port = port.strip()
        number = whole_number(port)
        if not sep or proto not in PROTO_NUMBERS or number is None:
            bad.append(f"{item!r} is not proto/port")
        elif not 0 <= number <= 65535:
            bad.append(f"{item!r}: port out of range")
        else:
            ports.add((proto, number))
    if bad:
        raise ValueError("; ".join(bad))
    return frozenset(ports)


# fwknopd reads the date with sscanf("%2d/%2d/%4d"): a field is at most that many characters
# (a sign counts), blanks before a number are skipped, and the rest of the line is ignored
_DATE = re.compile(r"\s*([+-]\d|\d{1,2})/\s*([+-]\d|\d{1,2})/\s*([+-]\d{1,3}|\d{1,4})", re.ASCII)


def expire_date(text: str) -> float | None:
    """``ACCESS_EXPIRE``'s date as fwknopd 2.6.10 reads it: midnight local time; None if invalid.

    Three numbers ``M/D/Y`` of at most 2, 2 and 4 characters (anything after
    the third is ignored), taken as ``mktime`` takes them: out-of-range
    months and days roll over
    (``13/10/2030`` is January 10, 2031), a year under 100 is 2000 + Y
    (``3/10/01`` is 2001), a year over 1900 is itself and any other is
    1900 + Y. A date that ``mktime`` cannot represent is invalid.
    """
    match = _DATE.match(text)
    if match is None:
        return None
    month, day, year = (int(group) for group in match.groups())
    month = month if month > 0 else month + 1  # fwknopd subtracts 1 from positive months only
    year = year + 2000 if year < 100 else (year if year > 1900 else year + 1900)
    try:
        return time.mktime((year, month, day, 0, 0, 0, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class GpgPolicy:
    """How a stanza decrypts GnuPG packets and whom it accepts as signer."""

    home_dir: str
    exe: str
    decrypt_id: str | None
    decrypt_pw: str | None = field(repr=False)
    require_sig: bool
    ignore_sig_verify_error: bool
    remote_ids: frozenset[str]
    fingerprints: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClientKey:
    """An x25519 client's public key, and the ``CLIENT_PUBLIC_KEY`` line that named it."""

    public: X25519PublicKey
    path: Path
    line: int

    def where(self) -> str:
        """``file:line``."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True, repr=False)
class AccessStanza:
    """One access stanza: whom it applies to, its keys, and what it allows."""

    number: int  # 1-based, in file order, as fwknopd's "stanza #N"
    path: Path
    line: int
    source_text: str
    source: tuple[Network, ...]
    destination: tuple[Network, ...] | None = None
    open_ports: frozenset[tuple[str, int]] | None = None
    restrict_ports: frozenset[tuple[str, int]] | None = None
    key: RijndaelKey | None = None
    hmac_key: HmacKey | None = None
    gpg: GpgPolicy | None = None
    fw_access_timeout: int = _DEFAULT_FW_TIMEOUT
    max_fw_timeout: int = _DEFAULT_MAX_FW_TIMEOUT
    require_username: str | None = None
    require_source_address: bool = False
    expires_at: float | None = None  # epoch seconds
    command_exec: CommandPolicy | None = None  # ENABLE_CMD_EXEC Y
    cycle: CyclePolicy | None = None  # CMD_CYCLE_OPEN: commands instead of firewall rules
    nat: NatPolicy | None = None  # FORCE_NAT, FORCE_SNAT, ... (None: none of them)
    client_keys: tuple[ClientKey, ...] = ()  # CLIENT_PUBLIC_KEY: x25519 clients, in file order
    require_os: OsRequirement | None = None  # REQUIRE_OS(_REGEX): SPA over TCP, SYN seen
    cmd_regex: re.Pattern[str] | None = None  # CMD_REGEX (1.x): commands it does not match
    # why this stanza refuses every packet (a key longer than fwknopd verifies with), or None
    unusable: str | None = None

    def __repr__(self) -> str:
        return f"AccessStanza(#{self.number} {self.path}:{self.line} SOURCE {self.source_text})"

    def matches_source(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether the packet's source address is in SOURCE."""
        return any(address in net for net in self.source)

    def matches_destination(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether the packet's destination is in DESTINATION (always, when unset)."""
        return self.destination is None or any(address in net for net in self.destination)

    def expired(self, now: float) -> bool:
        """Whether ACCESS_EXPIRE / ACCESS_EXPIRE_EPOCH has passed."""
        return self.expires_at is not None and now >= self.expires_at

    def timeout_for(self, client_timeout: int) -> int:
        """Seconds to keep access open: the client's wish, else ours, capped by MAX_FW_TIMEOUT.

        fwknopd 2.6.10 warns that it honors MAX_FW_TIMEOUT over a longer
        FW_ACCESS_TIMEOUT, then opens for FW_ACCESS_TIMEOUT; we do what it says.
        """
        wanted = client_timeout if client_timeout > 0 else self.fw_access_timeout
        return min(wanted, self.max_fw_timeout)


@dataclass
class _Draft:
    """Settings of one stanza while it is read (last value of a name wins)."""

    path: Path
    line: int
    settings: dict[str, Setting] = field(default_factory=dict)
    repeated: dict[str, list[Setting]] = field(default_factory=dict)
    # the stanza as it was at each %include_keys: fwknopd checks it there and drops it
    # (with the rest of its lines) if it is not valid at that point
    checkpoints: list[tuple[int, _Draft]] = field(default_factory=list)

    def snapshot(self) -> _Draft:
        """The stanza as read so far (without its checkpoints)."""
        repeated = {name: list(items) for name, items in self.repeated.items()}
        return _Draft(self.path, self.line, dict(self.settings), repeated)

    def set(self, setting: Setting) -> None:
        self.settings[setting.name] = setting
        if setting.name in _REPEATED:
            self.repeated.setdefault(setting.name, []).append(setting)


def _raw(text: str) -> bytes:
    """A value's bytes as they are in the file (a passphrase need not be UTF-8)."""
    return text.encode("utf-8", "surrogateescape")


def _files_in(folder: Path) -> list[Path]:
    # fwknopd takes directory order; we sort, so the result does not depend on the filesystem
    return sorted(p for p in folder.iterdir() if p.name.endswith(".conf") and p.is_file())


_INVALID = "invalid access file entry: {} (a name, then blanks, then its value)"


def _read(path: Path) -> str:
    """The text of a configuration file; ``OSError`` if it is not a regular file or unreadable.

    The bytes of a value are kept as they are (``surrogateescape``): fwknopd
    takes a passphrase as the bytes of its line, whatever they are.
    """
    if "\0" in str(path):  # no file has such a name; open() would raise ValueError
        raise OSError(errno.ENOENT, "no such file (a NUL in its name)")
    with path.open("rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return file.read().decode("utf-8", errors="surrogateescape")


def _unreadable(exc: OSError) -> str:
    """Why a file could not be read, as a problem says it."""
    return (
        exc.strerror
        if exc.errno == errno.EINVAL and exc.strerror
        else (f"cannot read: {exc.strerror or exc}")
    )


def _settings(path: Path, text: str, problems: Problems) -> list[Setting]:
    """The settings of an access file; each line that is not NAME VALUE is a problem."""
    invalid: list[Invalid] = []
    settings = list(read_settings(path, text, invalid, BARE_FLAGS))
    for line in invalid:
        problems.add(line.path, line.line, _INVALID.format(line.name))
    return settings


def _walk(
    path: Path,
    problems: Problems,
    depth: int,
    drafts: list[_Draft],
    current: list[_Draft | None],
    *,
    notes: list[str],
) -> None:
    """Read ``path`` into ``drafts``; ``current`` holds the stanza being read.

    ``notes`` collects what fwknopd only warns about (a missing keys file).
    """
    try:
        text = _read(path)
    except OSError as exc:
        problems.add(path, None, _unreadable(exc))
        return
    for setting in _settings(path, text, problems):
        name = setting.name
        if name in ("%include", "%include_folder"):
            if depth >= _MAX_INCLUDE_DEPTH:
                problems.add(path, setting.line, f"{name} nested more than 3 levels deep")
                continue
            target = Path(setting.value)
            if name == "%include":
                _walk(target, problems, depth + 1, drafts, current, notes=notes)
            elif not target.is_dir():
                problems.add(path, setting.line, f"%include_folder: {target} is not a directory")
            else:
                for file in _files_in(target):
                    _walk(file, problems, depth + 1, drafts, current, notes=notes)
        elif name == "%include_keys":
            draft = current[0]
            if draft is None:  # fwknopd ignores it, like every line before the first SOURCE
                notes.append(f"{path}:{setting.line}: %include_keys outside a stanza, ignored")
                continue
            try:
                keys_text = _read(Path(setting.value))
            except OSError as exc:
                if exc.errno != errno.ENOENT and not Path(setting.value).is_dir():
                    # fwknopd hangs on /dev/zero and the like: we refuse what is not a file
                    problems.add(
                        path, setting.line, f"%include_keys: {setting.value}: {_unreadable(exc)}"
                    )
                    continue
                # missing (or a folder, where fwknopd reads nothing): fwknopd goes on without
                # them, and the stanza is checked as it is (below)
                notes.append(
                    f"Access file: '{setting.value}' was not found. "
                    f"({path}:{setting.line}: %include_keys: {_unreadable(exc)})"
                )
                keys_text = ""
            for key_setting in _settings(Path(setting.value), keys_text, problems):
                if key_setting.name in _KEY_NAMES:
                    draft.set(key_setting)
            draft.checkpoints.append((setting.line, draft.snapshot()))
        elif name == "SOURCE":
            draft = _Draft(path, setting.line)
            draft.set(setting)
            drafts.append(draft)
            current[0] = draft
        elif current[0] is not None:
            current[0].set(setting)
        # lines before the first SOURCE are ignored, as fwknopd does


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Every stanza of the access files: SPA stanzas, and knock-sequence stanzas (fwknop 1.x)."""

    stanzas: tuple[AccessStanza, ...]
    sequences: tuple[SequenceStanza, ...] = ()


def load_policy(
    paths: Iterable[Path],
    *,
    gpg_home_dir: str = "/root/.gnupg",
    gpg_exe: str = "/usr/bin/gpg",
    warnings: list[str] | None = None,
    nat_enabled: bool = False,
    now: float | None = None,
) -> AccessPolicy:
    """Read access files (or the ``*.conf`` files of a folder); raise ``ConfigError``.

    ``nat_enabled``: fwknopd.conf turns on forwarding or local NAT (``FORCE_NAT``
    and ``FORCE_SNAT`` need one of them). ``now``: the time expired stanzas
    are warned about (the clock's, by default).
    """
    problems = Problems()
    notes: list[str] = []
    drafts: list[_Draft] = []
    for path in paths:
        if path.is_dir():
            for file in _files_in(path):
                _walk(file, problems, 0, drafts, [None], notes=notes)
        else:
            _walk(path, problems, 0, drafts, [None], notes=notes)
    build = partial(
        _build, gpg_home_dir=gpg_home_dir, gpg_exe=gpg_exe, nat_enabled=nat_enabled, now=now
    )
    kept = [draft for draft in drafts if not _dropped(draft, build, notes)]
    stanzas: list[AccessStanza] = []
    sequences: list[SequenceStanza] = []
    for number, draft in enumerate(kept, start=1):  # a dropped stanza has no number
        stanza = build(number, draft, problems, warnings=notes)
        if isinstance(stanza, SequenceStanza):
            sequences.append(stanza)
        elif stanza is not None:
            stanzas.append(stanza)
    if warnings is not None:
        warnings.extend(notes)
    if not kept and not problems.items:
        where = ", ".join(str(p) for p in paths)
        if drafts:
            problems.add(None, None, f"Could not find valid SOURCE stanza in access file: {where}")
        else:
            problems.add(None, None, f"{where}: no access stanza (a stanza starts with SOURCE)")
    problems.raise_if_any()
    return AccessPolicy(tuple(stanzas), tuple(sequences))


def load_access(
    paths: Iterable[Path],
    *,
    gpg_home_dir: str = "/root/.gnupg",
    gpg_exe: str = "/usr/bin/gpg",
    warnings: list[str] | None = None,
    nat_enabled: bool = False,
) -> tuple[AccessStanza, ...]:
    """The SPA stanzas of the access files (``load_policy`` has the knock sequences too)."""
    return load_policy(
        paths,
        gpg_home_dir=gpg_home_dir,
        gpg_exe=gpg_exe,
        warnings=warnings,
        nat_enabled=nat_enabled,
    ).stanzas


def _dropped(draft: _Draft, build: Callable[..., object], notes: list[str]) -> bool:
    """Whether fwknopd drops ``draft`` at one of its ``%include_keys`` lines (why: in ``notes``).

    fwknopd checks a stanza when it includes keys into it, and drops a stanza
    that is not valid then (no keys, keys that are equal ...) with a
    warning: the file loads with the other stanzas. A problem the whole
    stanza has too (a bad OPEN_PORTS) is no reason to drop it: it is
    reported, and refuses the file, as everywhere else.
    """
    if not draft.checkpoints:
        return False
    whole = Problems()
    build(0, draft, whole, warnings=None)
    if whole.items:
        return False
    for line, then in draft.checkpoints:
        found = Problems()
        build(0, then, found, warnings=None)
        if found.items:
            why = "; ".join(problem.message for problem in found.items)
            notes.append(
                f"{draft.path}:{draft.line}: access stanza dropped at its %include_keys "
                f"(line {line}), as fwknopd does: {why}"
            )
            return True
    return False


class _StanzaReader:
    """Turns one draft into an ``AccessStanza``, recording problems at their lines."""

    def __init__(self, draft: _Draft, problems: Problems) -> None:
        self.draft = draft
        self.s = draft.settings
        self.problems = problems
        self.notes: list[str] = []  # warnings about what fwknopd accepts and we only warn about
        self.unusable: str | None = None  # why no packet can pass this stanza, if none can

    def problem_count(self) -> int:
        """How many problems have been recorded so far."""
        return len(self.problems.items)

    def bad(self, name: str, message: str) -> None:
        setting = self.s[name]
        self.problems.add(setting.path, setting.line, message)

    def where(self, name: str) -> str:
        setting = self.s[name]
        return f"{setting.path}:{setting.line}"

    def note(self, name: str, message: str) -> None:
        self.notes.append(f"{self.where(name)}: {message}")

    def useless(self, name: str, why: str) -> None:
        """fwknopd loads this stanza and refuses every packet for it: so do we, and say so."""
        self.unusable = why
        self.note(
            name,
            f"{why}: fwknopd 2.6.10 loads the stanza and refuses every packet for it; so do we",
        )

    def value(self, name: str) -> str | None:
        setting = self.s.get(name)
        return None if setting is None else setting.value

    def flag(self, name: str) -> bool:
        v = self.value(name)  # "": a bare 1.x flag (only BARE_FLAGS may be)
        return v is not None and (v == "" or is_yes(v))

    def networks(self, name: str) -> tuple[Network, ...] | None:
        v = self.value(name)
        if v is None:
            return None
        try:
            return parse_networks(v)
        except ValueError as exc:
            self.bad(name, f"{name}: {exc}")
            return None

    def ports(self, name: str) -> frozenset[tuple[str, int]] | None:
        v = self.value(name)
        if v is None:
            return None
        try:
            return parse_ports(v)
        except ValueError as exc:
            self.bad(name, f"{name}: {exc}")
            return None

    def seconds(self, name: str, default: int) -> int:
        v = self.value(name)
        if v is None:
            return default
        number = whole_number(v[1:] if v.startswith("-") else v)
        if number is None or number > _MAX_TIMER:
            self.bad(name, f"{name} must be a number of seconds up to {_MAX_TIMER}")
            return default
        return number if number >= 1 and not v.startswith("-") else default

    def id_list(self, name: str) -> frozenset[str]:
        return frozenset(p.strip() for p in (self.value(name) or "").split(",") if p.strip())

    def mode(self) -> EncryptionMode:
        text = self.value("ENCRYPTION_MODE")
        if text is None:
            return EncryptionMode.CBC
        try:
            return EncryptionMode.from_name(text)
        except UsageError:
            self.bad(
                "ENCRYPTION_MODE",
                f"ENCRYPTION_MODE {text!r} is not CBC, CTR, CFB, OFB, ECB, legacy or Asymmetric",
            )
            return EncryptionMode.CBC

    def key_text(self, name: str) -> str | None:
        """A key's value; ``__CHANGEME__`` is reported (None)."""
        text = self.value(name)
        if text == _CHANGEME:
            self.bad(name, f"{name} is still {_CHANGEME}: put a key here (fwknop --key-gen)")
            return None
        return text

    def _key_bytes(self, name: str) -> bytes | None:
        """A key setting's bytes (base64 decoded for ``*_BASE64``); None when unset or bad."""
        text = self.key_text(name)
        if text is None:
            return None
        if not name.endswith("_BASE64"):
            return _raw(text)
        try:
            return decode_key_base64(text, name)
        except UsageError as exc:
            self.bad(name, str(exc))
            return None

    def rijndael_key(self, mode: EncryptionMode) -> RijndaelKey | None:
        if mode is EncryptionMode.ASYMMETRIC:
            return None
        for name in ("KEY_BASE64", "KEY"):
            secret = self._key_bytes(name)
            if secret is None:
                continue
            if len(secret) > MAX_RIJNDAEL_KEY:
                self.useless(name, f"{name} is {len(secret)} bytes, more than {MAX_RIJNDAEL_KEY}")
                return None
            try:
                return RijndaelKey(secret, mode)
            except UsageError as exc:
                self.bad(name, f"{name}: {exc}")
            return None
        return None

    def client_keys(self) -> tuple[ClientKey, ...]:
        """Every ``CLIENT_PUBLIC_KEY`` (each line may hold several, comma-separated), once each."""
        found: dict[X25519PublicKey, ClientKey] = {}
        for setting in self.draft.repeated.get("CLIENT_PUBLIC_KEY", ()):
            for text in setting.value.split(","):
                if text.strip() == _CHANGEME:
                    message = f"CLIENT_PUBLIC_KEY is still {_CHANGEME}: put the client's key here"
                    self.problems.add(setting.path, setting.line, message)
                    continue
                try:
                    public = X25519PublicKey.from_text(text)
                except UsageError as exc:  # its words never quote the text
                    self.problems.add(setting.path, setting.line, f"CLIENT_PUBLIC_KEY: {exc}")
                    continue
                found.setdefault(public, ClientKey(public, setting.path, setting.line))
        return tuple(found.values())

    def hmac_key(self) -> HmacKey | None:
        kind = HmacType.SHA256
        if (type_text := self.value("HMAC_DIGEST_TYPE")) is not None:
            try:
                kind = HmacType.from_name(type_text)
            except UsageError as exc:
                self.bad("HMAC_DIGEST_TYPE", f"HMAC_DIGEST_TYPE: {exc}")
                return None
        for name in ("HMAC_KEY_BASE64", "HMAC_KEY"):
            secret = self._key_bytes(name)
            if secret is None:
                continue
            if len(secret) > MAX_SERVER_HMAC_KEY:
                self.useless(
                    name, f"{name} is {len(secret)} bytes, more than {MAX_SERVER_HMAC_KEY}"
                )
                return None
            if len(secret) > MAX_HMAC_KEY:
                self.note(
                    name,
                    f"{name} is {len(secret)} bytes: the fwknop client makes no packet for a key "
                    f"longer than {MAX_HMAC_KEY} bytes (it cuts a longer --key-hmac to "
                    f"{MAX_HMAC_KEY})",
                )
            try:
                return HmacKey(secret, kind)
            except UsageError as exc:
                self.bad(name, f"{name}: {exc}")
            return None
        return None

    def gpg_policy(self, gpg_home_dir: str, gpg_exe: str) -> GpgPolicy | None:
        password = self.key_text("GPG_DECRYPT_PW")
        if password is not None and _raw(password).decode("utf-8", "replace") != password:
            self.bad("GPG_DECRYPT_PW", "GPG_DECRYPT_PW is not UTF-8 text")  # gpg takes text
            password = None
        if password is None and not self.flag("GPG_ALLOW_NO_PW"):
            return None
        home = self.value("GPG_HOME_DIR") or gpg_home_dir
        if "GPG_HOME_DIR" in self.s and not Path(home).is_dir():
            self.bad("GPG_HOME_DIR", f"GPG_HOME_DIR {home} is not a directory")
        # as fwknopd 2.6.10: only GPG_DISABLE_SIG turns signatures off (GPG_REQUIRE_SIG N does
        # not), and GPG_REQUIRE_SIG Y wins over it; signer lists are needed unless it is set
        disabled = self.flag("GPG_DISABLE_SIG")
        require_sig = self.flag("GPG_REQUIRE_SIG") or not disabled
        remote_ids = self.id_list("GPG_REMOTE_ID")
        fingerprints = self.id_list("GPG_FINGERPRINT_ID")
        if not disabled and not remote_ids and not fingerprints:
            name = next(
                n for n in ("GPG_REQUIRE_SIG", "GPG_ALLOW_NO_PW", "GPG_DECRYPT_PW") if n in self.s
            )
            self.bad(
                name,
                "GnuPG signatures are required: set GPG_REMOTE_ID or GPG_FINGERPRINT_ID "
                "(or GPG_DISABLE_SIG Y to accept unsigned packets)",
            )
        return GpgPolicy(
            home_dir=home,
            exe=self.value("GPG_EXE") or self.value("GPG_PATH") or gpg_exe,
            decrypt_id=self.value("GPG_DECRYPT_ID"),
            decrypt_pw=password,
            require_sig=require_sig,
            ignore_sig_verify_error=self.flag("GPG_IGNORE_SIG_VERIFY_ERROR"),
            remote_ids=remote_ids,
            fingerprints=fingerprints,
        )

    def expiry(self) -> float | None:
        if (epoch := self.value("ACCESS_EXPIRE_EPOCH")) is not None:
            # fwknopd takes any text here (garbage means "never expires"); we refuse it
            seconds = whole_number(epoch)
            if seconds is None:
                self.bad("ACCESS_EXPIRE_EPOCH", "ACCESS_EXPIRE_EPOCH must be Unix seconds")
                return None
            return float(seconds)
        if (date := self.value("ACCESS_EXPIRE")) is not None:
            expires = expire_date(date)
            if expires is None:
                self.bad(
                    "ACCESS_EXPIRE",
                    f"invalid date value {date!r} (need MM/DD/YYYY) for access stanza "
                    "expiration time",
                )
            return expires
        return None

    def nat_policy(self, nat_enabled: bool) -> NatPolicy | None:
        """``FORCE_NAT`` and friends, checked as fwknopd checks them at start."""
        if not any(name in self.s for name in _NAT_NAMES):
            return None
        needs = "needs ENABLE_IPT_FORWARDING or ENABLE_IPT_LOCAL_NAT in fwknopd.conf"
        force_nat = None
        if (text := self.value("FORCE_NAT")) is not None:
            try:
                force_nat = parse_force_nat(text)
            except ValueError as exc:
                self.bad("FORCE_NAT", str(exc))
            if not nat_enabled:
                self.bad("FORCE_NAT", f"FORCE_NAT {needs}")
        force_snat = None
        if (text := self.value("FORCE_SNAT")) is not None:
            try:
                force_snat = ipaddress.ip_address((text.split() or [text])[0])
            except ValueError:
                self.bad("FORCE_SNAT", f"FORCE_SNAT {text!r} is not an IP address")
            if not nat_enabled:
                self.bad("FORCE_SNAT", f"FORCE_SNAT {needs}")
        masquerade = self.flag("FORCE_MASQUERADE")
        forward_all = self.flag("FORWARD_ALL")
        forced = "FORCE_SNAT" if "FORCE_SNAT" in self.s else "FORCE_MASQUERADE"
        if ("FORCE_SNAT" in self.s or masquerade) and "FORCE_NAT" not in self.s:
            if not forward_all:
                self.bad(forced, f"{forced} needs FORCE_NAT or FORWARD_ALL")
            else:
                force_nat = (ipaddress.IPv4Address(0), 0)  # fwknopd's implied FORCE_NAT
                if not nat_enabled and forced == "FORCE_MASQUERADE":
                    # fwknopd starts, and its packets make a broken iptables call: the
                    # stanza's packets are refused as NAT requests NAT cannot serve
                    self.note(
                        forced,
                        f"{forced} with FORWARD_ALL {needs}: this stanza opens nothing "
                        "(its packets are refused)",
                    )
        return NatPolicy(
            force_nat=force_nat,
            force_snat=force_snat,
            force_masquerade=masquerade,
            disable_dnat=self.flag("DISABLE_DNAT"),
            forward_all=forward_all,
        )

    def os_requirement(self) -> OsRequirement | None:
        """``REQUIRE_OS`` / ``REQUIRE_OS_REGEX`` (our extension for SPA stanzas)."""
        try:
            return OsRequirement.parse(self.value("REQUIRE_OS"), self.value("REQUIRE_OS_REGEX"))
        except ValueError as exc:
            self.bad("REQUIRE_OS_REGEX", str(exc))
            return None

    def cmd_regex(self) -> re.Pattern[str] | None:
        """``CMD_REGEX`` (1.x): what a command must contain; compiled here, or reported."""
        text = self.value("CMD_REGEX")
        if text is None:
            return None
        if not self.flag("ENABLE_CMD_EXEC"):
            self.bad("CMD_REGEX", "CMD_REGEX limits command messages: it needs ENABLE_CMD_EXEC Y")
            return None
        try:
            return re.compile(text)
        except re.error as exc:
            self.bad("CMD_REGEX", f"CMD_REGEX {text!r} does not compile: {exc}")
            return None

    def run_as(self, user_name: str, group_name: str) -> RunAs | None:
        """``CMD_EXEC_USER``/``_GROUP`` (or the sudo pair) as ids; the names must exist."""
        user = self.value(user_name)
        group = self.value(group_name)
        uid = gid = None
        if user is not None:
            found = lookup_user(user)
            if found is None:
                self.bad(user_name, f"{user_name} {user!r} is not a user on this system")
            else:
                uid, gid = found
        if group is not None:
            group_id = lookup_group(group)
            if group_id is None:
                self.bad(group_name, f"{group_name} {group!r} is not a group on this system")
            else:
                gid = group_id
        if not uid and not gid:
            return None  # root (or unset): as the daemon runs
        return RunAs(uid or None, gid, user if uid else None, group)

    def command_policy(self) -> CommandPolicy | None:
        """``ENABLE_CMD_EXEC`` and how its commands run (the names are checked even when off)."""
        run_as = self.run_as("CMD_EXEC_USER", "CMD_EXEC_GROUP")
        self.run_as("CMD_SUDO_EXEC_USER", "CMD_SUDO_EXEC_GROUP")
        if not self.flag("ENABLE_CMD_EXEC"):
            return None
        return CommandPolicy(
            sudo=self.flag("ENABLE_CMD_SUDO_EXEC"),
            sudo_user=self.value("CMD_SUDO_EXEC_USER"),
            sudo_group=self.value("CMD_SUDO_EXEC_GROUP"),
            run_as=run_as,
        )

    def cycle_command(self, name: str) -> str | None:
        text = self.value(name)
        if text is None:
            return None
        if len(text) > MAX_CYCLE_LEN:
            self.bad(name, f"{name} is longer than {MAX_CYCLE_LEN} characters")
        elif not text.strip():
            self.bad(name, f"{name} is empty")
        elif len(split_words(text)) > MAX_WORDS:
            self.bad(name, f"{name} has more than {MAX_WORDS} words; fwknopd runs none that long")
        return text

    def cycle_policy(self) -> CyclePolicy | None:
        """``CMD_CYCLE_OPEN``/``CLOSE``/``TIMER``, checked as fwknopd checks them at start."""
        opened = self.cycle_command("CMD_CYCLE_OPEN")
        closing = self.value("CMD_CYCLE_CLOSE")
        timer = 0
        if (text := self.value("CMD_CYCLE_TIMER")) is not None:
            number = whole_number(text)
            if number is None or not 1 <= number <= _MAX_TIMER:
                self.bad("CMD_CYCLE_TIMER", f"CMD_CYCLE_TIMER must be 1..{_MAX_TIMER} seconds")
            else:
                timer = number
        if opened is None:
            if closing is not None:
                self.bad("CMD_CYCLE_CLOSE", "CMD_CYCLE_CLOSE needs CMD_CYCLE_OPEN")
            return None
        if closing is None:
            self.bad(
                "CMD_CYCLE_OPEN",
                "CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE (a command, or NONE for none)",
            )
            return None
        if closing.startswith("NONE"):  # fwknopd compares the first four characters
            return CyclePolicy(opened, None, timer)
        closing = self.cycle_command("CMD_CYCLE_CLOSE")
        if "CMD_CYCLE_TIMER" not in self.s:
            self.bad("CMD_CYCLE_CLOSE", "CMD_CYCLE_CLOSE needs CMD_CYCLE_TIMER (seconds)")
        return CyclePolicy(opened, closing, timer)


def _build(
    number: int,
    draft: _Draft,
    problems: Problems,
    *,
    gpg_home_dir: str,
    gpg_exe: str,
    warnings: list[str] | None,
    nat_enabled: bool,
    now: float | None = None,
) -> AccessStanza | SequenceStanza | None:
    before = len(problems.items)
    r = _StanzaReader(draft, problems)
    _names(r, warnings)
    kind = stanza_kind(r)
    if kind is None:
        return None
    if kind != SPA:
        for name, problem in misplaced(kind, (n for n in r.s if n in KNOWN_NAMES)):
            r.bad(name, problem)
        sequence = build_sequence(number, r, kind, (draft.path, draft.line), warnings)
        return sequence if len(problems.items) == before else None
    _spa_names(r, warnings)
    key = r.rijndael_key(r.mode())
    hmac_key = r.hmac_key()
    if key and hmac_key and hmac.compare_digest(key.secret, hmac_key.secret):
        r.bad(
            "HMAC_KEY_BASE64" if "HMAC_KEY_BASE64" in r.s else "HMAC_KEY",
            "the HMAC key must not be the same as the encryption key",
        )
    gpg = r.gpg_policy(gpg_home_dir, gpg_exe)
    client_keys = r.client_keys()
    named = "CLIENT_PUBLIC_KEY" in r.s  # a bad one is reported as such, not as no keys at all
    unusable = r.unusable is not None
    if key is None and gpg is None and not named and not unusable and len(problems.items) == before:
        problems.add(
            draft.path,
            draft.line,
            "no keys for this stanza: set KEY or KEY_BASE64, or GPG_DECRYPT_PW or "
            "GPG_ALLOW_NO_PW for GnuPG, or CLIENT_PUBLIC_KEY for x25519",
        )
    if r.unusable is not None:
        # no keys at all, never a stanza without its HMAC: it decrypts nothing, so it refuses
        # every packet (as fwknopd, which cannot use such a key either)
        key = hmac_key = gpg = None
        client_keys = ()
    stanza = AccessStanza(
        number=number,
        path=draft.path,
        line=draft.line,
        source_text=r.value("SOURCE") or "",
        source=r.networks("SOURCE") or (),
        destination=r.networks("DESTINATION"),
        open_ports=r.ports("OPEN_PORTS"),
        restrict_ports=r.ports("RESTRICT_PORTS"),
        key=key,
        hmac_key=hmac_key,
        gpg=gpg,
        fw_access_timeout=r.seconds(_timeout_name(r), _DEFAULT_FW_TIMEOUT),
        max_fw_timeout=r.seconds("MAX_FW_TIMEOUT", _DEFAULT_MAX_FW_TIMEOUT),
        require_username=r.value("REQUIRE_USERNAME"),
        require_source_address=r.flag("REQUIRE_SOURCE_ADDRESS") or r.flag("REQUIRE_SOURCE"),
        expires_at=r.expiry(),
        command_exec=r.command_policy(),
        cycle=r.cycle_policy(),
        nat=r.nat_policy(nat_enabled),
        client_keys=client_keys,
        require_os=r.os_requirement(),
        cmd_regex=r.cmd_regex(),
        unusable=r.unusable,
    )
    if len(problems.items) != before:
        return None
    if warnings is not None:
        _warn(stanza, r, warnings, time.time() if now is None else now)
    return stanza


def _warn(stanza: AccessStanza, r: _StanzaReader, warnings: list[str], now: float) -> None:
    """What a stanza that loads is warned about (``now``: the time expiry is judged at)."""
    if stanza.gpg is not None and "GPG_DISABLE_SIG" in r.s:
        where = r.where("GPG_DISABLE_SIG")
        if stanza.gpg.require_sig and r.flag("GPG_DISABLE_SIG"):
            warnings.append(
                f"{where}: GPG_REQUIRE_SIG and GPG_DISABLE_SIG are both set, signatures are checked"
            )
        elif not stanza.gpg.require_sig:
            warnings.append(
                f"{where}: GPG_DISABLE_SIG: unsigned GnuPG packets are accepted "
                "(GPG_REQUIRE_SIG should really be enabled)"
            )
    if stanza.max_fw_timeout < stanza.fw_access_timeout:
        warnings.append(  # fwknopd's words
            f"{stanza.path}:{stanza.line}: Warning: MAX_FW_TIMEOUT < FW_ACCESS_TIMEOUT, honoring "
            f"MAX_FW_TIMEOUT for stanza source: '{stanza.source_text}' (#{stanza.number})"
        )
    if not stanza.require_source_address:
        warnings.append(
            f"{stanza.path}:{stanza.line}: REQUIRE_SOURCE_ADDRESS not enabled for access stanza "
            f"source: '{stanza.source_text}'"
        )
    warnings.extend(r.notes)
    if stanza.expired(now):
        warnings.append(
            f"{stanza.path}:{stanza.line}: access stanza #{stanza.number} has expired: it is "
            "loaded and never matches"
        )


def _timeout_name(r: _StanzaReader) -> str:
    """FW_ACCESS_TIMEOUT, or 1.x's MAX_ACCESS_TIMEOUT when only that is set."""
    return "MAX_ACCESS_TIMEOUT" if "MAX_ACCESS_TIMEOUT" in r.s and (
        "FW_ACCESS_TIMEOUT" not in r.s) else "FW_ACCESS_TIMEOUT"  # fmt: skip


def _names(r: _StanzaReader, warnings: list[str] | None) -> None:
    """Names that are not ours: 1.x's answered by name (``legacy.py``), the rest warned about."""
    for name, setting in r.s.items():
        legacy = LEGACY_NAMES.get(name)
        if legacy is not None and legacy.level is Level.ERROR:
            r.bad(name, legacy.message(name))
        elif warnings is None or name in KNOWN_NAMES:
            continue
        elif legacy is not None:
            warnings.append(f"{setting.path}:{setting.line}: {legacy.message(name)}")
        else:
            where = f"{setting.path}:{setting.line}"
            warnings.append(f"{where}: ignoring unknown access parameter {shown_name(name)}")


def _spa_names(r: _StanzaReader, warnings: list[str] | None) -> None:
    """An SPA stanza: knock-sequence keywords refused, 1.x's collect modes explained."""
    for name, setting in r.s.items():
        if name == "PERMIT_CLIENT_PORTS":
            if warnings is not None:
                warnings.append(
                    f"{setting.path}:{setting.line}: PERMIT_CLIENT_PORTS (fwknop 1.x): ignored in "
                    "an SPA stanza, which grants what the client asks unless OPEN_PORTS limits it"
                )
        elif name in SEQUENCE_NAMES:
            r.bad(name, f"{name} belongs to knock-sequence stanzas (ENCRYPT_SEQUENCE or "
                  "SHARED_SEQUENCE); this is an SPA stanza")  # fmt: skip
    mode = (r.value("DATA_COLLECT_MODE") or "").upper()
    for name in ("FILE_PCAP", "ULOG_PCAP"):
        if (name in r.s or mode == name) and warnings is not None:
            where = r.s[name if name in r.s else "DATA_COLLECT_MODE"]
            warnings.append(
                f"{where.path}:{where.line}: {name} (fwknop 1.x): an SPA stanza; how packets are "
                "captured is fwknopd.conf's (sniffing PCAP_INTF, the UDP server, or PCAP_FILE)"
            )
