"""What the Perl fwknopd 1.x read that this fwknopd does not: each name, and what to use instead.

fwknop 1.x's ``access.conf``, ``fwknop.conf`` and command line (its manual,
legacy-knock.md §7, §8) hold names that 2.x dropped. Our server reads old
files unchanged, so every such name is recognised here and answered by
name: an **error** where ignoring it would grant more than 1.x did, or
silently drop something the administrator relies on (the file is refused,
with the replacement to use); a **warning** where the name only tuned a
mechanism that no longer exists (the setting is ignored, and the log says
what took its place). What still makes sense is implemented where it
belongs (``CMD_REGEX``, ``REQUIRE_OS``, ``GPG_PATH``, ``MAX_ACCESS_TIMEOUT``,
the knock-sequence keywords, ``-O``, ``--os``), not here.

A table, so that the reader of each file asks one question per name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["ACCESS", "CONFIG", "FW_LOG_REFUSAL", "Legacy", "Level"]


class Level(enum.Enum):
    """What reading a 1.x name does."""

    ERROR = "error"  # the file is refused
    WARNING = "warning"  # the setting is ignored, and logged


@dataclass(frozen=True, slots=True)
class Legacy:
    """A fwknop 1.x name: how it is answered, and the message (what to use instead)."""

    level: Level
    text: str
    only_if_yes: bool = False  # an error only when the value is yes; else ignored, with a warning

    def message(self, name: str) -> str:
        """``NAME (fwknop 1.x): text``."""
        return f"{name} (fwknop 1.x): {self.text}"


def _error(text: str) -> Legacy:
    return Legacy(Level.ERROR, text)


def _warning(text: str) -> Legacy:
    return Legacy(Level.WARNING, text)


_CYCLE = _error(
    "not supported; in an SPA stanza use CMD_CYCLE_OPEN, CMD_CYCLE_CLOSE and CMD_CYCLE_TIMER "
    "(1.x's $SRC is $IP there; $PORT and $PROTO are the same)"
)
_NAT = _error(
    "not supported; 2.x NAT is FORCE_NAT in the stanza with ENABLE_IPT_FORWARDING (or "
    "ENABLE_IPT_LOCAL_NAT) in fwknopd.conf"
)
_PREFIX = _warning("ignored: the GnuPG 'hQ' prefix is always restored before decrypting")

# access.conf names of fwknop 1.x that are not 2.x names (the knock-sequence keywords, which
# we implement, are not here: server/knockstanza.py reads them)
ACCESS: Final[dict[str, Legacy]] = {
    "ENABLE_OUTPUT_ACCESS": _error(
        "OUTPUT rules are not supported (ENABLE_IPT_OUTPUT is refused in fwknopd.conf too); "
        "let replies out with a 'ct state established' rule"
    ),
    "ENABLE_FORWARD_ACCESS": _NAT,
    "INTERNAL_NET_ACCESS": _NAT,
    "ENABLE_EXTERNAL_CMDS": _CYCLE,
    "EXTERNAL_CMD_OPEN": _CYCLE,
    "EXTERNAL_CMD_CLOSE": _CYCLE,
    "EXTERNAL_CMD_ALARM": _CYCLE,
    "DISABLE_FW_ACCESS": _error(
        "not supported: without it this stanza would open ports that 1.x kept closed; for a "
        "stanza that only runs commands, keep ENABLE_CMD_EXEC and remove access from its users"
    ),
    "REQUIRE_AUTH_METHOD": _error(
        "crypt() password authentication is not supported: the stanza's keys authenticate"
    ),
    "SHADOW_FILE": _error(
        "crypt() password authentication is not supported: the stanza's keys authenticate"
    ),
    "PERMIT_CLIENT_TIMEOUT": _warning(
        "ignored: an SPA client's timeout is honoured up to MAX_FW_TIMEOUT (2.x)"
    ),
    "GPG_USE_OPTIONS": _warning("ignored: gpg never reads an options file here (--no-options)"),
    "GPG_NO_OPTIONS": _warning("ignored: gpg never reads an options file here (the default)"),
    "GPG_NO_REQUIRE_PREFIX": _PREFIX,
    "GPG_PREFIX": _PREFIX,
    "GPG_AGENT_INFO": _warning("ignored: GnuPG 2.1 and later find their agent themselves"),
    "RESTRICT_INTF": _warning("ignored (1.x did not use it either): capture is PCAP_INTF's"),
}

_LOG_INPUT = (
    "ignored: knocks are captured from the wire (an AF_PACKET socket with a kernel filter "
    "built from the access stanzas), so no iptables LOG rules, syslog file or knopmd are needed"
)
_HELPER = "ignored: one process with timers does the work of knoptm and knopwatchd"
_NO_MAIL = "ignored: fwknopd logs (syslog or stderr); it sends no mail"

# fwknop.conf names of fwknop 1.x that fwknopd.conf 2.x does not have
CONFIG: Final[dict[str, Legacy]] = {
    "AUTH_MODE": _warning(
        "ignored: SPA and knock sequences are served together, as the access stanzas ask"
    ),
    "ENABLE_SYSLOG_FILE": _warning(_LOG_INPUT),
    "IPT_SYSLOG_FILE": _warning(_LOG_INPUT),
    "FW_DATA_FILE": _warning(_LOG_INPUT),
    "KNOPMD_FIFO": _warning(_LOG_INPUT),
    "FW_MSG_SEARCH": _warning(_LOG_INPUT),
    "SLEEP_INTERVAL": _warning("ignored: packets are handled as they arrive"),
    "KNOPTM_IP_TIMEOUT_SOCK": _warning(_HELPER),
    "KNOPWATCHD_CHECK_INTERVAL": _warning(_HELPER),
    "KNOPWATCHD_MAX_RETRIES": _warning(_HELPER),
    "ENABLE_VOLUNTARY_EXITS": _warning(_HELPER),
    "EXIT_INTERVAL": _warning(_HELPER),
    "ALERTING_METHODS": _warning(_NO_MAIL),
    "EMAIL_ADDRESSES": _warning(_NO_MAIL),
    "SYSLOG_DAEMON": _warning("ignored: SYSLOG_IDENTITY and SYSLOG_FACILITY say how to log"),
    "SYSLOG_PRIORITY": _warning("ignored: SYSLOG_IDENTITY and SYSLOG_FACILITY say how to log"),
    "ENABLE_FKO_MODULE": _warning("ignored: a detail of the Perl implementation"),
    "DIGEST_TYPE": _warning("ignored: replay digests are SHA-256, as fwknopd 2.x's"),
    "IPT_EXEC_SLEEP": _warning("ignored: a detail of the Perl implementation"),
    "IPT_EXEC_STYLE": _warning("ignored: a detail of the Perl implementation"),
    "PCAP_PKT_FILE": _warning(
        "ignored: packets are sniffed directly (PCAP_FILE / --pcap-file read a finished capture)"
    ),
    "MIN_SPA_PKT_LEN": _warning("ignored: the SPA size limits are fwknopd 2.x's"),
    "REQUIRE_SOURCE_ADDRESS": Legacy(
        Level.ERROR,
        "is set per stanza now: put 'REQUIRE_SOURCE_ADDRESS Y' in each access.conf stanza",
        only_if_yes=True,
    ),
}

# 1.x's --fw-log input: refused by name (cli.py)
FW_LOG_REFUSAL: Final = (
    "--fw-log (fwknop 1.x: read iptables LOG lines from syslog) is not supported: knocks and "
    "SYNs are captured from the wire. For fingerprints use --os with --pcap-file FILE "
    "(e.g. a 'tcpdump -w FILE' capture), or --os alone to capture live on PCAP_INTF"
)
