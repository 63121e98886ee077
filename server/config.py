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
``REPLAY_DB_FILE``       the SQLite replay cache, ``$FWKNOP_RUN_DIR/replay.sqlite``.
``UDPSERV_RCVBUF``       receive buffer of the UDP server socket in bytes (16 MiB).
``ENABLE_IP6TABLES``     Y: the iptables backend also opens for IPv6 sources, with
                         the same chain in the ip6tables beside ``FIREWALL_EXE``
                         (N, as fwknopd, which never touches ip6tables).

Features a later version implements (``ENABLE_IPT_OUTPUT``, NFQUEUE, NAT
through firewalld) are parsed, and a configuration that turns one on is
refused with a message naming it, never silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .confsyntax import Setting, is_yes, read_settings
from .errors import Problems

__all__ = [
    "DEFAULTS",
    "DEFAULT_CONF",
    "FIREWALL_EXES",
    "Overrides",
    "ServerConfig",
    "expand",
    "load_server_config",
]

DEFAULT_CONF_DIR = "/etc/fwknop"
DEFAULT_CONF = Path(DEFAULT_CONF_DIR) / "fwknopd.conf"
DEFAULT_RUN_DIR = "/var/run/fwknop"
_MAX_CHAIN_POS = 131071

# name -> default value (None: unset). fwknopd keeps every value as a string.
DEFAULTS: dict[str, str | None] = {
    # capture and general
    "PCAP_INTF": "eth0",
    "PCAP_FILE": None,
    "ENABLE_PCAP_PROMISC": "N",
    "PCAP_FILTER": "udp port 62201",
    "PCAP_DISPATCH_COUNT": "100",
    "PCAP_LOOP_SLEEP": "100000",
    "ENABLE_PCAP_ANY_DIRECTION": "N",
    "EXIT_AT_INTF_DOWN": "Y",
    "MAX_SNIFF_BYTES": "1500",
    "ENABLE_SPA_PACKET_AGING": "Y",
    "MAX_SPA_PACKET_AGE": "120",
    "ENABLE_DIGEST_PERSISTENCE": "Y",
    "RULES_CHECK_THRESHOLD": "20",
    "CMD_EXEC_TIMEOUT": None,
    "ENABLE_SPA_OVER_HTTP": "N",
    "ENABLE_TCP_SERVER": "N",
    "TCPSERV_PORT": "62201",
    "ENABLE_UDP_SERVER": "N",
    "UDPSERV_PORT": "62201",
    "UDPSERV_SELECT_TIMEOUT": "500000",
    "ENABLE_NFQ_CAPTURE": "N",
    "NFQ_INTERFACE": None,
    "NFQ_PORT": "62201",
    "NFQ_TABLE": "mangle",
    "NFQ_CHAIN": "FWKNOP_NFQ",
    "NFQ_QUEUE_NUMBER": "1",
    "NFQ_LOOP_SLEEP": "500000",
    "LOCALE": None,
    "SYSLOG_IDENTITY": "fwknopd",
    "SYSLOG_FACILITY": "LOG_DAEMON",
    "ENABLE_X_FORWARDED_FOR": "N",
    "ENABLE_DESTINATION_RULE": "N",
    "ENABLE_RULE_PREPEND": "N",
    "ENABLE_NAT_DNS": "Y",
    "FWKNOP_RUN_DIR": DEFAULT_RUN_DIR,
    "FWKNOP_CONF_DIR": DEFAULT_CONF_DIR,
    "ACCESS_FILE": "$FWKNOP_CONF_DIR/access.conf",
    "ACCESS_FOLDER": None,
    "FWKNOP_PID_FILE": "$FWKNOP_RUN_DIR/fwknopd.pid",
    "DIGEST_FILE": "$FWKNOP_RUN_DIR/digest.cache",
    "DIGEST_DB_FILE": "$FWKNOP_RUN_DIR/digest_db.cache",
    "GPG_HOME_DIR": "/root/.gnupg",
    "GPG_EXE": "/usr/bin/gpg",
    "SUDO_EXE": "/usr/bin/sudo",
    "FIREWALL_EXE": "/usr/sbin/iptables",
    "VERBOSE": None,
    "FAULT_INJECTION_TAG": None,
    # iptables
    "ENABLE_IPT_FORWARDING": "N",
    "ENABLE_IPT_LOCAL_NAT": "N",
    "ENABLE_IPT_SNAT": "N",
    "SNAT_TRANSLATE_IP": None,
    "ENABLE_IPT_OUTPUT": "N",
    "FLUSH_IPT_AT_INIT": "Y",
    "FLUSH_IPT_AT_EXIT": "Y",
    "IPT_INPUT_ACCESS": "ACCEPT, filter, INPUT, 1, FWKNOP_INPUT, 1",
    "IPT_OUTPUT_ACCESS": "ACCEPT, filter, OUTPUT, 1, FWKNOP_OUTPUT, 1",
    "IPT_FORWARD_ACCESS": "ACCEPT, filter, FORWARD, 1, FWKNOP_FORWARD, 1",
    "IPT_DNAT_ACCESS": "DNAT, nat, PREROUTING, 1, FWKNOP_PREROUTING, 1",
    "IPT_SNAT_ACCESS": "SNAT, nat, POSTROUTING, 1, FWKNOP_POSTROUTING, 1",
    "IPT_MASQUERADE_ACCESS": "MASQUERADE, nat, POSTROUTING, 1, FWKNOP_MASQUERADE, 1",
    "ENABLE_IPT_COMMENT_CHECK": "Y",
    # firewalld builds (FIREWALL_TYPE firewalld)
    "ENABLE_FIREWD_FORWARDING": "N",
    "ENABLE_FIREWD_LOCAL_NAT": "N",
    "ENABLE_FIREWD_SNAT": "N",
    "ENABLE_FIREWD_OUTPUT": "N",
    "FLUSH_FIREWD_AT_INIT": "Y",
    "FLUSH_FIREWD_AT_EXIT": "Y",
    "FIREWD_INPUT_ACCESS": "ACCEPT, filter, INPUT, 1, FWKNOP_INPUT, 1",
    "FIREWD_OUTPUT_ACCESS": "ACCEPT, filter, OUTPUT, 1, FWKNOP_OUTPUT, 1",
    "FIREWD_FORWARD_ACCESS": "ACCEPT, filter, FORWARD, 1, FWKNOP_FORWARD, 1",
    "FIREWD_DNAT_ACCESS": "DNAT, nat, PREROUTING, 1, FWKNOP_PREROUTING, 1",
    "FIREWD_SNAT_ACCESS": "SNAT, nat, POSTROUTING, 1, FWKNOP_POSTROUTING, 1",
    "FIREWD_MASQUERADE_ACCESS": "MASQUERADE, nat, POSTROUTING, 1, FWKNOP_MASQUERADE, 1",
    "ENABLE_FIREWD_COMMENT_CHECK": "Y",
    # ipfw and pf builds (FIREWALL_TYPE ipfw, pf)
    "FLUSH_IPFW_AT_INIT": "Y",
    "FLUSH_IPFW_AT_EXIT": "Y",
    "IPFW_START_RULE_NUM": "10000",
    "IPFW_MAX_RULES": "65535",
    "IPFW_ACTIVE_SET_NUM": "1",
    "IPFW_EXPIRE_SET_NUM": "2",
    "IPFW_EXPIRE_PURGE_INTERVAL": "30",
    "IPFW_ADD_CHECK_STATE": "N",
    "PF_ANCHOR_NAME": "fwknop",
    "PF_EXPIRE_INTERVAL": "30",
    # ours
    "FIREWALL_TYPE": None,
    "NFT_TABLE": None,
    "NFT_CHAIN": None,
    "FLUSH_NFT_AT_INIT": "$FLUSH_IPT_AT_INIT",
    "FLUSH_NFT_AT_EXIT": "$FLUSH_IPT_AT_EXIT",
    "REPLAY_DB_FILE": "$FWKNOP_RUN_DIR/replay.sqlite",
    "UDPSERV_RCVBUF": str(16 << 20),
    "ENABLE_IP6TABLES": "N",
}

# integer settings: name -> (minimum, maximum)
_RANGES: dict[str, tuple[int, int]] = {
    "PCAP_DISPATCH_COUNT": (1, 8388608),
    "PCAP_LOOP_SLEEP": (1, 8388608),
    "MAX_SNIFF_BYTES": (1, 32768),
    "MAX_SPA_PACKET_AGE": (1, 100000),
    "RULES_CHECK_THRESHOLD": (0, 131071),
    "TCPSERV_PORT": (1, 65535),
    "UDPSERV_PORT": (1, 65535),
    "UDPSERV_SELECT_TIMEOUT": (1, 8388608),
    "NFQ_PORT": (1, 65535),
    "NFQ_QUEUE_NUMBER": (0, 65535),
    "NFQ_LOOP_SLEEP": (1, 8388608),
    "IPFW_START_RULE_NUM": (0, _MAX_CHAIN_POS),
    "IPFW_MAX_RULES": (1, _MAX_CHAIN_POS),
    "IPFW_ACTIVE_SET_NUM": (0, 63),
    "IPFW_EXPIRE_SET_NUM": (0, 63),
    "IPFW_EXPIRE_PURGE_INTERVAL": (1, _MAX_CHAIN_POS),
    "PF_EXPIRE_INTERVAL": (1, _MAX_CHAIN_POS),
    "UDPSERV_RCVBUF": (65536, 1 << 30),
    "CMD_EXEC_TIMEOUT": (1, 8388608),  # fwknopd 2.6.10 ignores it; our commands time out
}

# names in fwknopd's sample file that fwknopd 2.6.10 itself ignores
_LEGACY = frozenset(
    {
        "ENABLE_EXTERNAL_CMDS",
        "EXTERNAL_CMD_OPEN",
        "EXTERNAL_CMD_CLOSE",
        "EXTERNAL_CMD_ALARM",
        "ENABLE_EXT_CMD_PREFIX",
        "EXT_CMD_PREFIX",
        "BLACKLIST",
        "IPT_EXEC_TRIES",
    }
)

# switches a later version implements; turning one on is refused
NOT_YET: dict[str, str] = {
    "ENABLE_IPT_OUTPUT": "OUTPUT rules",
    "ENABLE_NFQ_CAPTURE": "NFQUEUE capture (not in Debian's fwknopd either)",
    "ENABLE_FIREWD_FORWARDING": "NAT and forwarding",
    "ENABLE_FIREWD_LOCAL_NAT": "local NAT",
    "ENABLE_FIREWD_SNAT": "SNAT",
    "ENABLE_FIREWD_OUTPUT": "OUTPUT rules",
}

# FIREWALL_EXE when the file does not set it: each fwknopd build's own tool
FIREWALL_EXES: dict[str, str] = {
    "iptables": "/usr/sbin/iptables",
    "firewalld": "/usr/bin/firewall-cmd",
    "pf": "/sbin/pfctl",
    "ipfw": "/sbin/ipfw",
}

_FIREWALL_TYPES = ("nftables", "iptables", "firewalld", "pf", "ipfw", "log")
_FACILITIES = ("LOG_DAEMON", *(f"LOG_LOCAL{i}" for i in range(8)))
_EMBEDDED = re.compile(r"\$([A-Z_]+)")
_CHAIN_FIELD = re.compile(r"^[A-Za-z0-9_]+$")
_PF_ANCHOR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,62}$")


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
    """The effective fwknopd.conf: typed views of what the daemon uses, and every raw value."""

    path: Path
    values: Mapping[str, str | None]
    origins: Mapping[str, tuple[Path, int]]

    # -- typed views ---------------------------------------------------------

    def text(self, name: str) -> str | None:
        """The expanded string value of ``name`` (None when unset)."""
        return self.values[name]

    def flag(self, name: str) -> bool:
        """A boolean setting."""
        value = self.values[name]
        return value is not None and is_yes(value)

    def required(self, name: str) -> str:
        """The value of a setting that has a default (so is always set)."""
        value = self.values[name]
        if value is None:
            raise LookupError(f"{name} is not set")
        return value

    def number(self, name: str) -> int:
        """An integer setting (validated at load)."""
        return int(self.required(name))

    def file(self, name: str) -> Path:
        """A path setting."""
        return Path(self.required(name))

    @property
    def run_dir(self) -> Path:
        """``FWKNOP_RUN_DIR``."""
        return self.file("FWKNOP_RUN_DIR")

    @property
    def udp_server(self) -> bool:
        """Capture with a UDP socket instead of sniffing."""
        return self.flag("ENABLE_UDP_SERVER")

    @property
    def max_packet_age(self) -> int | None:
        """Seconds a packet's timestamp may be off, or None when aging is off."""
        if not self.flag("ENABLE_SPA_PACKET_AGING"):
            return None
        return self.number("MAX_SPA_PACKET_AGE")

    def chain(self, name: str) -> ChainSpec:
        """A parsed ``IPT_*_ACCESS`` chain spec (validated at load)."""
        spec = _parse_chain(self.required(name))
        if spec is None:
            raise LookupError(f"{name} is not a chain spec")
        return spec

    def firewall_exe(self, kind: str) -> str:
        """``FIREWALL_EXE`` as set, else the tool of backend ``kind`` (``firewall-cmd``, ...)."""
        value = self.required("FIREWALL_EXE")
        if "FIREWALL_EXE" in self.origins or value != DEFAULTS["FIREWALL_EXE"]:
            return value
        return FIREWALL_EXES.get(kind, value)

    def where(self, name: str) -> str:
        """``file:line`` that set ``name``, or ``default``."""
        origin = self.origins.get(name)
        return f"{origin[0]}:{origin[1]}" if origin else "default"


def _parse_chain(value: str) -> ChainSpec | None:
    parts = [p.strip() for p in value.split(",")]
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


def _read(path: Path, problems: Problems) -> list[Setting]:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        problems.add(path, None, f"cannot read: {exc.strerror or exc}")
        return []
    return list(read_settings(path, text))


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
    overrides = overrides or Overrides()
    problems = Problems()
    raw: dict[str, str | None] = dict(DEFAULTS)
    origins: dict[str, tuple[Path, int]] = {}
    for source in (path, *overrides.override_files):
        for setting in _read(source, problems):
            if setting.name in DEFAULTS:
                raw[setting.name] = setting.value
                origins[setting.name] = (setting.path, setting.line)
            elif warnings is not None:
                why = "fwknopd 2.6 ignores it too" if setting.name in _LEGACY else "unknown"
                warnings.append(f"{setting.path}:{setting.line}: ignoring {setting.name} ({why})")
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
    _validate(config, problems)
    problems.raise_if_any()
    return config


def _validate(config: ServerConfig, problems: Problems) -> None:
    def bad(name: str, message: str) -> None:
        origin = config.origins.get(name)
        problems.add(origin[0] if origin else config.path, origin[1] if origin else None, message)

    values = config.values
    for name, (lo, hi) in _RANGES.items():
        value = values[name]
        if value is None:
            continue
        if not value.isascii() or not value.isdigit() or not lo <= int(value) <= hi:
            bad(name, f"{name} must be a number from {lo} to {hi}, not {value!r}")
    for name in DEFAULTS:
        chain_value = values[name] if name.endswith("_ACCESS") else None
        if chain_value is not None and _parse_chain(chain_value) is None:
            bad(name, f"{name} must be 'target, table, from_chain, position, to_chain, position'")
    if values["SYSLOG_FACILITY"] not in _FACILITIES:
        bad("SYSLOG_FACILITY", f"SYSLOG_FACILITY must be one of {', '.join(_FACILITIES)}")
    fw_type = values["FIREWALL_TYPE"]
    if fw_type is not None and fw_type.lower() not in _FIREWALL_TYPES:
        bad("FIREWALL_TYPE", f"FIREWALL_TYPE must be one of {', '.join(_FIREWALL_TYPES)}")
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
        bad(which, f"IPFW_ACTIVE_SET_NUM and IPFW_EXPIRE_SET_NUM must differ (both are {active})")
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
    for name, feature in NOT_YET.items():
        if config.flag(name):
            bad(name, f"{name}: {feature} is not supported by this fwknopd yet; set it to N")
    if values["PCAP_FILTER"] is not None and len(values["PCAP_FILTER"] or "") > 1024:
        bad("PCAP_FILTER", "PCAP_FILTER is longer than 1024 characters")


def describe(config: ServerConfig, names: Iterable[str] | None = None) -> list[str]:
    """``NAME  VALUE  (where)`` lines for ``-D``; nothing here is secret."""
    lines = []
    for name in names or DEFAULTS:
        value = config.values.get(name)
        shown = "<not set>" if value is None else value
        lines.append(f"{name:<28}{shown}  ({config.where(name)})")
    return lines
