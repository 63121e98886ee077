"""fwknopd.conf: read fwknopd's own server configuration, as it is (server-config.md §2).

Every name fwknopd 2.6.10 knows is accepted: the ones of its Linux build,
those of its firewalld, ipfw and pf builds (``FIREWD_*``, ``IPFW_*``,
``PF_*``: our backends of those names use them), NFQUEUE's, and the ones
fwknopd itself ignores. Unknown names get a warning and are skipped, as
fwknopd does. Numbers are range-checked, ``$NAME`` references expanded,
and every problem is reported as ``file:line: what is wrong``.

Names fwknopd does not have, all optional:

``FIREWALL_TYPE``        ``nftables``, ``iptables``, ``firewalld``, ``pf``, ``ipfw`` or
                         ``log`` (grants are only logged); detected when absent
                         (nftables, then iptables). ``FIREWALL_EXE`` defaults to
                         the chosen backend's tool, as in fwknopd's builds.
``NFT_TABLE``            ``FAMILY NAME`` of the table whose input chain holds
                         the host's policy, e.g. ``inet filter``; found when absent.
``NFT_CHAIN``            that input chain, e.g. ``input``.
``FLUSH_NFT_AT_INIT``    like ``FLUSH_IPT_AT_INIT`` for the nftables backend
``FLUSH_NFT_AT_EXIT``    (both default to the ``FLUSH_IPT_*`` values).
``REPLAY_DB_FILE``       the SQLite replay cache, ``$FWKNOP_RUN_DIR/replay.sqlite``
                         (``DIGEST_FILE.sqlite`` when ``DIGEST_FILE`` or ``-d`` names
                         a digest file other than the default).
``REPLAY_CACHE_URL``     the replay store by URL (``sqlite:///path``, or Redis:
                         ``redis://[user@]host:port/db``, ``rediss://`` with TLS);
                         unset, the SQLite cache above. ``replay/`` lists the stores.
``REPLAY_CACHE_PASSWORD_FILE``  a file (mode 0600) holding Redis's password, for a
                         URL without one: never on a command line.
``REPLAY_CACHE_PREFIX``  what every Redis key of ours starts with (``fwknop:``), so
                         one Redis can serve several fleets.
``REPLAY_CACHE_REQUIRED``  Y: refuse packets while Redis cannot be reached (N: decide
                         them against this host's own cache, and say so loudly).
``REPLAY_CACHE_TIMEOUT`` milliseconds a Redis call may take before Redis counts as
                         down (50).
``REPLAY_CACHE_SKEW``    seconds a shared digest outlives its packet's age window,
                         for gateways whose clocks differ (30).
``GRANT_SYNC_GROUP``     a name: grants are shared with every fwknopd of this group
                         on the same Redis (``REPLAY_CACHE_URL``).
``METRICS_LISTEN``       ``ADDRESS:PORT`` of a Prometheus metrics endpoint (off when
                         unset; ``PORT`` alone is 127.0.0.1:PORT).
``UDPSERV_RCVBUF``       receive buffer of the UDP server socket in bytes (16 MiB).
``ENABLE_IP6TABLES``     Y: the iptables backend also opens for IPv6 sources, with
                         the same chain in the ip6tables beside ``FIREWALL_EXE``
                         (N, as fwknopd, which never touches ip6tables).
``SERVER_PRIVATE_KEY_FILE`` the x25519 mode's server key (docs/x25519-spa.md; made by
                         ``fwknopd --key-gen-server``), ``$FWKNOP_CONF_DIR/server_x25519.key``;
                         read when a stanza names a ``CLIENT_PUBLIC_KEY`` (or when
                         set here), again on every SIGHUP.
``P0F_FP_FILE``          p0f v3 signature files (comma list) for ``REQUIRE_OS``
                         and ``--os``: ``/etc/p0f/p0f.fp`` (Debian's ``p0f``), used
                         when present; administrators' own files after it.
``KNOCK_LIMIT_FILE``     where ``KNOCK_LIMIT`` counts are kept across restarts,
                         ``$FWKNOP_RUN_DIR/knock_limits.json``.

fwknop 1.x's names for knock sequences and fingerprints, which fwknopd 2.x
dropped: ``P0F_FILE`` (pf.os signature files, comma list,
``$FWKNOP_CONF_DIR/pf.os``; used when present), ``MAX_HOPS`` (the TTL window
of a fingerprint, 20) and ``BLACKLIST`` (networks whose knock sequences are
never taken, as knock source or as the address a sequence asks to open;
fwknopd 2.6 ignores it, and so do SPA stanzas here). Other 1.x names are
answered by name (``legacy.py``): a warning saying what replaced them, or
an error where ignoring them would open more than 1.x did. 1.x's seven-field
``IPT_INPUT_ACCESS`` (with ``src`` after the target) is read as the 2.x
six-field form.

Every feature fwknopd 2.6.10's builds have is implemented, NFQUEUE capture
(``ENABLE_NFQ_CAPTURE``, the ``NFQ_*`` keys; not in Debian's fwknopd) too.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .confsyntax import Invalid, Setting, is_yes, read_settings, shown_name
from .errors import Problems
from .legacy import CONFIG as LEGACY_NAMES
from .legacy import Level

__all__ = [
    "DEFAULTS",
    "DEFAULT_CONF",
    "FIREWALL_TYPES",
    "KEYS",
    "REDIS_SCHEMES",
    "ChainSpec",
    "Key",
    "Kind",
    "Overrides",
    "Reload",
    "ServerConfig",
    "expand",
    "listen_address",
    "load_server_config",
    "read_server_config",
    "redact_url",
]

DEFAULT_CONF_DIR = "/etc/fwknop"
DEFAULT_CONF = Path(DEFAULT_CONF_DIR) / "fwknopd.conf"
DEFAULT_RUN_DIR = "/var/run/fwknop"
_MAX_CHAIN_POS = 131071


class Kind(enum.Enum):
    """What a setting's value is: how it is checked at load, and read after."""

    TEXT = "text"
    FLAG = "flag"  # Y/N (fwknopd: anything starting with Y or y is yes)
    NUMBER = "number"  # a whole number within the key's range
    CHAIN = "chain"  # an IPT_*_ACCESS chain spec


class Reload(enum.Enum):
    """What a SIGHUP does with a changed value."""

    LIVE = "live"  # taken at once (the pipeline, the access files, commands)
    CAPTURE = "capture"  # capture is reopened with it
    RESTART = "restart"  # read at start only (firewall, stores, files): a restart applies it
    UNUSED = "unused"  # parsed and checked, and not used by this fwknopd


@dataclass(frozen=True, slots=True)
class Key:
    """One fwknopd.conf name: its default (None: unset), kind, range and reload behaviour."""

    default: str | None
    kind: Kind = Kind.TEXT
    reload: Reload = Reload.LIVE
    lo: int = 0
    hi: int = 0


def _flag(default: str, reload: Reload = Reload.LIVE) -> Key:
    return Key(default, Kind.FLAG, reload)


def _number(default: str | None, lo: int, hi: int, reload: Reload = Reload.LIVE) -> Key:
    return Key(default, Kind.NUMBER, reload, lo, hi)


def _chain(default: str, reload: Reload = Reload.RESTART) -> Key:
    return Key(default, Kind.CHAIN, reload)


_LIVE, _CAPTURE, _RESTART, _UNUSED = Reload.LIVE, Reload.CAPTURE, Reload.RESTART, Reload.UNUSED
_SLEEP = 8388608  # the largest count or microseconds fwknopd takes for its loop settings
_IPT = "filter, INPUT, 1, FWKNOP_INPUT, 1"

# Every name fwknopd.conf may hold: the one place that knows each key's kind, default,
# range and whether a SIGHUP applies it. fwknopd keeps every value as a string; so do we,
# and each part of the daemon reads its own keys through ServerConfig's typed accessors.
KEYS: dict[str, Key] = {
    # capture and general
    "PCAP_INTF": Key("eth0", reload=_CAPTURE),
    "PCAP_FILE": Key(None, reload=_RESTART),
    "ENABLE_PCAP_PROMISC": _flag("N", _CAPTURE),
    "PCAP_FILTER": Key("udp port 62201", reload=_CAPTURE),
    "PCAP_DISPATCH_COUNT": _number("100", 1, _SLEEP, _UNUSED),
    "PCAP_LOOP_SLEEP": _number("100000", 1, _SLEEP, _UNUSED),
    "ENABLE_PCAP_ANY_DIRECTION": _flag("N", _CAPTURE),
    "EXIT_AT_INTF_DOWN": _flag("Y"),
    "MAX_SNIFF_BYTES": _number("1500", 1, 32768, _UNUSED),
    "ENABLE_SPA_PACKET_AGING": _flag("Y"),
    "MAX_SPA_PACKET_AGE": _number("120", 1, 100000),
    "ENABLE_DIGEST_PERSISTENCE": _flag("Y", _RESTART),
    "RULES_CHECK_THRESHOLD": _number("20", 0, _MAX_CHAIN_POS, _RESTART),
    "CMD_EXEC_TIMEOUT": _number(None, 1, _SLEEP),  # fwknopd 2.6.10 ignores it; we time out
    "ENABLE_SPA_OVER_HTTP": _flag("N"),
    "ENABLE_TCP_SERVER": _flag("N", _RESTART),
    "TCPSERV_PORT": _number("62201", 1, 65535, _RESTART),
    "ENABLE_UDP_SERVER": _flag("N", _CAPTURE),
    "UDPSERV_PORT": _number("62201", 1, 65535, _CAPTURE),
    "UDPSERV_SELECT_TIMEOUT": _number("500000", 1, _SLEEP, _UNUSED),
    # NFQUEUE: the capture source reads the queue, the firewall makes its rule at start
    "ENABLE_NFQ_CAPTURE": _flag("N", _RESTART),
    "NFQ_INTERFACE": Key(None, reload=_RESTART),
    "NFQ_PORT": _number("62201", 1, 65535, _RESTART),
    "NFQ_TABLE": Key("mangle", reload=_RESTART),
    "NFQ_CHAIN": Key("FWKNOP_NFQ", reload=_RESTART),
    "NFQ_QUEUE_NUMBER": _number("1", 0, 65535, _RESTART),
    "NFQ_LOOP_SLEEP": _number("500000", 1, _SLEEP, _UNUSED),
    "LOCALE": Key(None, reload=_UNUSED),
    "SYSLOG_IDENTITY": Key("fwknopd", reload=_RESTART),
    "SYSLOG_FACILITY": Key("LOG_DAEMON", reload=_RESTART),
    "ENABLE_X_FORWARDED_FOR": _flag("N"),
    "ENABLE_DESTINATION_RULE": _flag("N", _RESTART),
    "ENABLE_RULE_PREPEND": _flag("N", _RESTART),
    "ENABLE_NAT_DNS": _flag("Y"),
    "FWKNOP_RUN_DIR": Key(DEFAULT_RUN_DIR, reload=_RESTART),
    "FWKNOP_CONF_DIR": Key(DEFAULT_CONF_DIR),
    "ACCESS_FILE": Key("$FWKNOP_CONF_DIR/access.conf"),
    "ACCESS_FOLDER": Key(None),
    "FWKNOP_PID_FILE": Key("$FWKNOP_RUN_DIR/fwknopd.pid", reload=_RESTART),
    "DIGEST_FILE": Key("$FWKNOP_RUN_DIR/digest.cache", reload=_RESTART),
    "DIGEST_DB_FILE": Key("$FWKNOP_RUN_DIR/digest_db.cache", reload=_UNUSED),
    "GPG_HOME_DIR": Key("/root/.gnupg"),
    "GPG_EXE": Key("/usr/bin/gpg"),
    "SUDO_EXE": Key("/usr/bin/sudo"),
    "FIREWALL_EXE": Key("/usr/sbin/iptables", reload=_RESTART),
    "VERBOSE": Key(None, reload=_UNUSED),
    "FAULT_INJECTION_TAG": Key(None, reload=_UNUSED),
    # iptables
    "ENABLE_IPT_FORWARDING": _flag("N", _RESTART),
    "ENABLE_IPT_LOCAL_NAT": _flag("N", _RESTART),
    "ENABLE_IPT_SNAT": _flag("N", _RESTART),
    "SNAT_TRANSLATE_IP": Key(None),
    "ENABLE_IPT_OUTPUT": _flag("N", _RESTART),
    "FLUSH_IPT_AT_INIT": _flag("Y", _RESTART),
    "FLUSH_IPT_AT_EXIT": _flag("Y", _RESTART),
    "IPT_INPUT_ACCESS": _chain(f"ACCEPT, {_IPT}"),
    "IPT_OUTPUT_ACCESS": _chain("ACCEPT, filter, OUTPUT, 1, FWKNOP_OUTPUT, 1"),
    "IPT_FORWARD_ACCESS": _chain("ACCEPT, filter, FORWARD, 1, FWKNOP_FORWARD, 1"),
    "IPT_DNAT_ACCESS": _chain("DNAT, nat, PREROUTING, 1, FWKNOP_PREROUTING, 1"),
    "IPT_SNAT_ACCESS": _chain("SNAT, nat, POSTROUTING, 1, FWKNOP_POSTROUTING, 1"),
    "IPT_MASQUERADE_ACCESS": _chain("MASQUERADE, nat, POSTROUTING, 1, FWKNOP_MASQUERADE, 1"),
    "ENABLE_IPT_COMMENT_CHECK": _flag("Y", _UNUSED),
    # firewalld builds (FIREWALL_TYPE firewalld)
    "ENABLE_FIREWD_FORWARDING": _flag("N", _RESTART),
    "ENABLE_FIREWD_LOCAL_NAT": _flag("N", _RESTART),
    "ENABLE_FIREWD_SNAT": _flag("N", _RESTART),
    "ENABLE_FIREWD_OUTPUT": _flag("N", _RESTART),
    "FLUSH_FIREWD_AT_INIT": _flag("Y", _RESTART),
    "FLUSH_FIREWD_AT_EXIT": _flag("Y", _RESTART),
    "FIREWD_INPUT_ACCESS": _chain(f"ACCEPT, {_IPT}"),
    "FIREWD_OUTPUT_ACCESS": _chain("ACCEPT, filter, OUTPUT, 1, FWKNOP_OUTPUT, 1"),
    "FIREWD_FORWARD_ACCESS": _chain("ACCEPT, filter, FORWARD, 1, FWKNOP_FORWARD, 1"),
    "FIREWD_DNAT_ACCESS": _chain("DNAT, nat, PREROUTING, 1, FWKNOP_PREROUTING, 1"),
    "FIREWD_SNAT_ACCESS": _chain("SNAT, nat, POSTROUTING, 1, FWKNOP_POSTROUTING, 1"),
    "FIREWD_MASQUERADE_ACCESS": _chain("MASQUERADE, nat, POSTROUTING, 1, FWKNOP_MASQUERADE, 1"),
    "ENABLE_FIREWD_COMMENT_CHECK": _flag("Y", _UNUSED),
    # ipfw and pf builds (FIREWALL_TYPE ipfw, pf)
    "FLUSH_IPFW_AT_INIT": _flag("Y", _RESTART),
    "FLUSH_IPFW_AT_EXIT": _flag("Y", _RESTART),
    "IPFW_START_RULE_NUM": _number("10000", 0, _MAX_CHAIN_POS, _RESTART),
    "IPFW_MAX_RULES": _number("65535", 1, _MAX_CHAIN_POS, _RESTART),
    "IPFW_ACTIVE_SET_NUM": _number("1", 0, 63, _RESTART),
    "IPFW_EXPIRE_SET_NUM": _number("2", 0, 63, _RESTART),
    "IPFW_EXPIRE_PURGE_INTERVAL": _number("30", 1, _MAX_CHAIN_POS, _RESTART),
    "IPFW_ADD_CHECK_STATE": _flag("N", _RESTART),
    "PF_ANCHOR_NAME": Key("fwknop", reload=_RESTART),
    "PF_EXPIRE_INTERVAL": _number("30", 1, _MAX_CHAIN_POS, _UNUSED),
    # ours
    "FIREWALL_TYPE": Key(None, reload=_RESTART),
    "NFT_TABLE": Key(None, reload=_RESTART),
    "NFT_CHAIN": Key(None, reload=_RESTART),
    "FLUSH_NFT_AT_INIT": _flag("$FLUSH_IPT_AT_INIT", _RESTART),
    "FLUSH_NFT_AT_EXIT": _flag("$FLUSH_IPT_AT_EXIT", _RESTART),
    "REPLAY_DB_FILE": Key("$FWKNOP_RUN_DIR/replay.sqlite", reload=_RESTART),
    "REPLAY_CACHE_URL": Key(None, reload=_RESTART),
    "REPLAY_CACHE_PASSWORD_FILE": Key(None, reload=_RESTART),
    "REPLAY_CACHE_PREFIX": Key("fwknop:", reload=_RESTART),
    "REPLAY_CACHE_REQUIRED": _flag("N", _RESTART),
    "REPLAY_CACHE_TIMEOUT": _number("50", 1, 5000, _RESTART),
    "REPLAY_CACHE_SKEW": _number("30", 0, 86400, _RESTART),
    "GRANT_SYNC_GROUP": Key(None, reload=_RESTART),
    "METRICS_LISTEN": Key(None, reload=_RESTART),
    "UDPSERV_RCVBUF": _number(str(16 << 20), 65536, 1 << 30, _CAPTURE),
    "ENABLE_IP6TABLES": _flag("N", _RESTART),
    "SERVER_PRIVATE_KEY_FILE": Key("$FWKNOP_CONF_DIR/server_x25519.key"),
    "P0F_FP_FILE": Key("/etc/p0f/p0f.fp"),
    "KNOCK_LIMIT_FILE": Key("$FWKNOP_RUN_DIR/knock_limits.json", reload=_RESTART),
    # fwknop 1.x's (knock sequences, fingerprints)
    "P0F_FILE": Key("$FWKNOP_CONF_DIR/pf.os"),
    "MAX_HOPS": _number("20", 1, 255),
    "BLACKLIST": Key(None),
}
DEFAULTS: dict[str, str | None] = {name: key.default for name, key in KEYS.items()}

# names in fwknopd's sample file that fwknopd 2.6.10 itself ignores
_LEGACY = frozenset(
    {
        "ENABLE_EXTERNAL_CMDS",
        "EXTERNAL_CMD_OPEN",
        "EXTERNAL_CMD_CLOSE",
        "EXTERNAL_CMD_ALARM",
        "ENABLE_EXT_CMD_PREFIX",
        "EXT_CMD_PREFIX",
        "IPT_EXEC_TRIES",
    }
)

# FIREWALL_TYPE's values: the firewall registry's names (firewall/__init__.py; a test keeps
# the two in step: this module is read before any backend is)
FIREWALL_TYPES = ("nftables", "iptables", "firewalld", "pf", "ipfw", "log")
_FACILITIES = ("LOG_DAEMON", *(f"LOG_LOCAL{i}" for i in range(8)))
_EMBEDDED = re.compile(r"\$([A-Z_]+)")
_CHAIN_FIELD = re.compile(r"^[A-Za-z0-9_]+$")
_NFQ_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,28}$")
_PF_ANCHOR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,62}$")
_PREFIX = re.compile(r"^[!-~]{1,64}$")
_GROUP = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REDIS_SCHEMES = ("redis://", "rediss://")


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """An ``IPT_*_ACCESS`` value: target, table, from_chain, jump position, to_chain, position."""

    target: str
    table: str
    from_chain: str
    jump_position: int
    to_chain: str
    rule_position: int


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line options that replace configuration values (fwknopd's precedence)."""

    values: Mapping[str, str] = field(default_factory=dict)
    override_files: Sequence[Path] = ()


@dataclass(frozen=True)
class ServerConfig:
    """The effective fwknopd.conf: every value, checked, read through typed accessors.

    Each accessor checks that the key is of its kind (``KEYS``): a part of
    the daemon reads its own keys once, into typed frozen settings of its own
    (``from_config``), and cannot read a key as what it is not.
    """

    path: Path
    values: Mapping[str, str | None]
    origins: Mapping[str, tuple[Path, int]]

    # -- typed views ---------------------------------------------------------

    def _of(self, name: str, kind: Kind) -> str | None:
        if KEYS[name].kind is not kind:
            raise TypeError(f"{name} is a {KEYS[name].kind.value} setting, not a {kind.value}")
        return self.values[name]

    def text(self, name: str) -> str | None:
        """The expanded string value of ``name`` (None when unset)."""
        return self._of(name, Kind.TEXT)

    def flag(self, name: str) -> bool:
        """A boolean setting."""
        value = self._of(name, Kind.FLAG)
        return value is not None and is_yes(value)

    def required(self, name: str) -> str:
        """The value of a text setting that has a default (so is always set)."""
        value = self._of(name, Kind.TEXT)
        if value is None:
            raise LookupError(f"{name} is not set")
        return value

    def number(self, name: str) -> int:
        """An integer setting (validated at load); ``LookupError`` when unset."""
        value = self._of(name, Kind.NUMBER)
        if value is None:
            raise LookupError(f"{name} is not set")
        return int(value)

    def optional_number(self, name: str) -> int | None:
        """An integer setting that may be unset."""
        value = self._of(name, Kind.NUMBER)
        return None if value is None else int(value)

    def file(self, name: str) -> Path:
        """A path setting."""
        return Path(self.required(name))

    def default_file(self, name: str) -> Path:
        """What path setting ``name`` would be if it were not set (its default, expanded)."""
        self._of(name, Kind.TEXT)
        value = expand({**self.values, name: DEFAULTS[name]}, name)
        if value is None:
            raise LookupError(f"{name} has no default")
        return Path(value)

    def chain(self, name: str) -> ChainSpec:
        """A parsed ``IPT_*_ACCESS`` chain spec (validated at load)."""
        spec = _parse_chain(self._of(name, Kind.CHAIN) or "")
        if spec is None:
            raise LookupError(f"{name} is not a chain spec")
        return spec

    def firewall_exe(self, default: str) -> str:
        """``FIREWALL_EXE`` as set, else ``default`` (the backend's own tool)."""
        value = self.required("FIREWALL_EXE")
        if "FIREWALL_EXE" in self.origins or value != DEFAULTS["FIREWALL_EXE"]:
            return value
        return default

    @property
    def max_packet_age(self) -> int | None:
        """Seconds a packet's timestamp may be off, or None when aging is off.

        Reading a capture file (``PCAP_FILE``), aging is off unless the file
        turns it on itself: the packets are as old as the capture.
        """
        aging = self.flag("ENABLE_SPA_PACKET_AGING") and not (
            self.text("PCAP_FILE") and "ENABLE_SPA_PACKET_AGING" not in self.origins
        )
        return self.number("MAX_SPA_PACKET_AGE") if aging else None

    def changed(self, other: ServerConfig, reload: Reload) -> list[str]:
        """The names of ``reload``'s kind whose value differs in ``other`` (a reload's new file)."""
        return [
            name
            for name, key in KEYS.items()
            if key.reload is reload and self.values[name] != other.values[name]
        ]

    def where(self, name: str) -> str:
        """``file:line`` that set ``name``, or ``default``."""
        origin = self.origins.get(name)
        return f"{origin[0]}:{origin[1]}" if origin else "default"


def _parse_chain(value: str) -> ChainSpec | None:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 7 and parts[1].lower() in ("src", "dst"):
        del parts[1]  # fwknop 1.x's direction field: the 2.x chain spec has none
    if len(parts) != 6 or not all(_CHAIN_FIELD.match(p) for p in parts):
        return None
    target, table, from_chain, jump, to_chain, pos = parts
    if not (jump.isdigit() and pos.isdigit()):
        return None
    if int(jump) > _MAX_CHAIN_POS or int(pos) > _MAX_CHAIN_POS:
        return None
    return ChainSpec(target, table, from_chain, int(jump), to_chain, int(pos))


def expand(values: Mapping[str, str | None], name: str, seen: tuple[str, ...] = ()) -> str | None:
    """``name``'s value with a leading ``$OTHER`` replaced by OTHER's (expanded) value.

    fwknopd expands only a reference at the start of the value; ``ValueError``
    names an unknown or circular reference.
    """
    value = values.get(name)
    if value is None:
        return None
    match = _EMBEDDED.match(value)
    if match is None:
        return value
    ref = match.group(1)
    if ref not in values:
        raise ValueError(f"invalid embedded variable ${ref} in {name}")
    if ref in seen or ref == name:
        raise ValueError(f"circular reference ${ref} in {name}")
    base = expand(values, ref, (*seen, name))
    if base is None:
        raise ValueError(f"${ref} in {name} refers to a setting that is not set")
    return base + value[match.end() :]


def _read(path: Path, problems: Problems, invalid: list[Invalid]) -> list[Setting]:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        problems.add(path, None, f"cannot read: {exc.strerror or exc}")
        return []
    return list(read_settings(path, text, invalid))


def load_server_config(
    path: Path = DEFAULT_CONF,
    overrides: Overrides | None = None,
    *,
    warnings: list[str] | None = None,
) -> ServerConfig:
    """Read fwknopd.conf (plus ``-O`` files and command-line values); raise ``ConfigError``.

    ``warnings`` collects the non-fatal messages (unknown names), each
    ``file:line: text``.
    """
    config, problems = read_server_config(path, overrides, warnings=warnings)
    problems.raise_if_any()
    return config


def read_server_config(
    path: Path = DEFAULT_CONF,
    overrides: Overrides | None = None,
    *,
    warnings: list[str] | None = None,
) -> tuple[ServerConfig, Problems]:
    """fwknopd.conf as far as it can be read, and its problems (none: it can be used).

    With problems, a value may be unexpanded or out of range: such a
    configuration is for finding the access files, so that both files are
    checked (``--exit-parse-config``), never for running.
    """
    overrides = overrides or Overrides()
    problems = Problems()
    raw: dict[str, str | None] = dict(DEFAULTS)
    origins: dict[str, tuple[Path, int]] = {}
    for source in (path, *overrides.override_files):
        invalid: list[Invalid] = []
        for setting in _read(source, problems, invalid):
            name = setting.name
            if name in DEFAULTS:
                earlier = origins.get(name)
                if (
                    earlier is not None
                    and earlier[0] not in (path, setting.path)
                    and (raw[name] != setting.value)
                ):
                    _overridden(setting, earlier, warnings)
                raw[name] = setting.value
                origins[name] = (setting.path, setting.line)
            elif name in LEGACY_NAMES:
                _legacy(setting, problems, warnings)
            elif warnings is not None:
                why = "fwknopd 2.6 ignores it too" if name in _LEGACY else "unknown"
                shown = shown_name(name)
                warnings.append(f"{setting.path}:{setting.line}: ignoring {shown} ({why})")
        if warnings is not None:  # fwknopd skips such a line too, and goes on
            warnings.extend(
                f"{line.path}:{line.line}: invalid config file entry, skipped: {line.name} "
                "(a name, then blanks, then its value)"
                for line in invalid
            )
    raw.update(overrides.values)
    values: dict[str, str | None] = {}
    for name, unexpanded in raw.items():
        try:
            values[name] = expand(raw, name)
        except ValueError as exc:
            where = origins.get(name, (path, None))
            problems.add(where[0], where[1], str(exc))
            values[name] = unexpanded
    config = ServerConfig(path=path, values=values, origins=origins)
    _validate(config, problems, [] if warnings is None else warnings)
    return config, problems


def _legacy(setting: Setting, problems: Problems, warnings: list[str] | None) -> None:
    """A fwknop 1.x name: refused, or ignored with what replaced it (``legacy.py``)."""
    legacy = LEGACY_NAMES[setting.name]
    where = f"{setting.path}:{setting.line}"
    if legacy.level is Level.ERROR and (not legacy.only_if_yes or is_yes(setting.value)):
        problems.add(setting.path, setting.line, legacy.message(setting.name))
    elif warnings is not None and legacy.only_if_yes:
        warnings.append(f"{where}: {setting.name} (fwknop 1.x): ignored")
    elif warnings is not None:
        warnings.append(f"{where}: {legacy.message(setting.name)}")


def _overridden(setting: Setting, earlier: tuple[Path, int], warnings: list[str] | None) -> None:
    """Two ``-O`` files set one name: the later wins (fwknopd 2.x); fwknop 1.x took the first."""
    if warnings is not None:
        warnings.append(
            f"{setting.path}:{setting.line}: {setting.name} here replaces the value from "
            f"{earlier[0]}:{earlier[1]} (the last -O file wins, as in fwknopd 2.x; "
            "fwknop 1.x kept the first)"
        )


def _validate(config: ServerConfig, problems: Problems, warnings: list[str]) -> None:
    def bad(name: str, message: str) -> None:
        origin = config.origins.get(name)
        problems.add(origin[0] if origin else config.path, origin[1] if origin else None, message)

    def warn(name: str, message: str) -> None:
        warnings.append(f"{config.where(name)}: {message}")

    values = config.values
    for name, key in KEYS.items():
        value = values[name]
        if value is None or key.kind is not Kind.NUMBER:
            continue
        if not value.isascii() or not value.isdigit() or not key.lo <= int(value) <= key.hi:
            bad(name, f"{name} must be a number from {key.lo} to {key.hi}, not {value!r}")
    fw_type = values["FIREWALL_TYPE"]
    for name, key in KEYS.items():
        chain_value = values[name] if key.kind is Kind.CHAIN else None
        if chain_value is not None and _parse_chain(chain_value) is None:
            message = f"{name} must be 'target, table, from_chain, position, to_chain, position'"
            if name.startswith("FIREWD_") and (fw_type or "").lower() != "firewalld":
                # only the firewalld backend reads them, as only fwknopd's firewalld build does
                warn(name, f"{message}; ignored, as FIREWALL_TYPE is not firewalld")
            else:
                bad(name, message)
    if values["SYSLOG_FACILITY"] not in _FACILITIES:
        bad("SYSLOG_FACILITY", f"SYSLOG_FACILITY must be one of {', '.join(_FACILITIES)}")
    if fw_type is not None and fw_type.lower() not in FIREWALL_TYPES:
        bad(
            "FIREWALL_TYPE",
            f"FIREWALL_TYPE {fw_type!r} is not a firewall type; it must be one of "
            f"{', '.join(FIREWALL_TYPES)}",
        )
    table = values["NFT_TABLE"]
    if table is not None:
        family, _, name = table.partition(" ")
        if family not in ("inet", "ip") or not _CHAIN_FIELD.match(name.strip() or "-"):
            bad("NFT_TABLE", "NFT_TABLE must be 'inet NAME' or 'ip NAME', e.g. 'inet filter'")
    active, expire = values["IPFW_ACTIVE_SET_NUM"], values["IPFW_EXPIRE_SET_NUM"]
    if active == expire and active is not None and active.isdigit() and int(active) > 0:
        which = "IPFW_EXPIRE_SET_NUM"
        if which not in config.origins:
            which = "IPFW_ACTIVE_SET_NUM"
        message = f"IPFW_ACTIVE_SET_NUM and IPFW_EXPIRE_SET_NUM must differ (both are {active})"
        if (fw_type or "").lower() == "ipfw":  # fwknopd's ipfw build refuses it too
            bad(which, message)
        else:  # only the ipfw backend reads them (fwknopd's Linux build ignores them)
            warn(which, f"{message}; ignored, as FIREWALL_TYPE is not ipfw")
    run_dir = values["FWKNOP_RUN_DIR"]
    if run_dir is not None and not run_dir.startswith("/"):
        bad("FWKNOP_RUN_DIR", f"FWKNOP_RUN_DIR: path {run_dir!r} is not absolute")
    anchor = values["PF_ANCHOR_NAME"]
    if anchor is not None and not _PF_ANCHOR.match(anchor):
        bad("PF_ANCHOR_NAME", f"PF_ANCHOR_NAME must be a pf anchor name, not {anchor!r}")
    chain = values["NFT_CHAIN"]
    if chain is not None and not _CHAIN_FIELD.match(chain):
        bad("NFT_CHAIN", f"NFT_CHAIN must be a chain name, not {chain!r}")
    snat = values["SNAT_TRANSLATE_IP"]
    if snat is not None:
        try:
            ipaddress.IPv4Address(snat)
        except ValueError:
            bad("SNAT_TRANSLATE_IP", f"SNAT_TRANSLATE_IP must be an IPv4 address, not {snat!r}")
    if config.flag("ENABLE_NFQ_CAPTURE") and (fw_type or "").lower() in ("pf", "ipfw"):
        bad("ENABLE_NFQ_CAPTURE", f"ENABLE_NFQ_CAPTURE: NFQUEUE is Linux netfilter's; the "
            f"{fw_type} firewall has none (use iptables, firewalld or nftables)")  # fmt: skip
    for name in ("NFQ_TABLE", "NFQ_CHAIN", "NFQ_INTERFACE"):
        nfq_value = values[name]
        if nfq_value is not None and not _NFQ_NAME.match(nfq_value):
            bad(name, f"{name} must be a name (letters, digits, '_', '-', '.'), not {nfq_value!r}")
    if values["PCAP_FILTER"] is not None and len(values["PCAP_FILTER"] or "") > 1024:
        bad("PCAP_FILTER", "PCAP_FILTER is longer than 1024 characters")
    _validate_fleet(values, bad)


def _validate_fleet(values: Mapping[str, str | None], bad: Callable[[str, str], None]) -> None:
    """The keys of a fleet: the shared replay cache, grant sharing, metrics."""
    prefix = values["REPLAY_CACHE_PREFIX"] or ""
    if not _PREFIX.match(prefix):
        bad("REPLAY_CACHE_PREFIX", "REPLAY_CACHE_PREFIX must be 1 to 64 printable characters "
            f"without spaces, not {prefix!r}")  # fmt: skip
    group = values["GRANT_SYNC_GROUP"]
    if group is not None:
        if not _GROUP.match(group):
            bad("GRANT_SYNC_GROUP", "GRANT_SYNC_GROUP must be 1 to 64 letters, digits, '.', '_' "
                f"or '-', not {group!r}")  # fmt: skip
        url = values["REPLAY_CACHE_URL"] or ""
        if not url.startswith(REDIS_SCHEMES):
            bad("GRANT_SYNC_GROUP", "GRANT_SYNC_GROUP needs the group's Redis: set "
                "REPLAY_CACHE_URL to a redis:// or rediss:// URL")  # fmt: skip
    metrics = values["METRICS_LISTEN"]
    if metrics is not None:
        try:
            listen_address(metrics)
        except ValueError as exc:
            bad("METRICS_LISTEN", f"METRICS_LISTEN: {exc}")


def listen_address(value: str) -> tuple[str, int]:
    """``METRICS_LISTEN`` as (address, port): ``PORT`` alone is loopback; ``ValueError`` if bad."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected ADDRESS:PORT or PORT, a port from 1 to 65535, not {value!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{host!r} is not an IP address (ADDRESS:PORT, e.g. 127.0.0.1:9822)"
        ) from None
    return host, int(port)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs, -D and --status)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{path}"


def describe(config: ServerConfig, names: Iterable[str] | None = None) -> list[str]:
    """``NAME  VALUE  (where)`` lines for ``-D``; a password in a URL is masked."""
    lines = []
    for name in names or DEFAULTS:
        value = config.values.get(name)
        shown = "<not set>" if value is None else value
        if name == "REPLAY_CACHE_URL" and value is not None:
            shown = redact_url(value)  # a password may be in it
        lines.append(f"{name:<28}{shown}  ({config.where(name)})")
    return lines
