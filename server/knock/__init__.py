"""fwknop 1.x port-knock sequences and passive OS fingerprinting, pure and sans-I/O.

The pieces the daemon wires together (KNOCK-NOTES in the report says how):

* :func:`parse_knock` (``wire``): an IP packet and its capture time to a
  :class:`Knock`, with the :class:`SynFingerprint` of a pure SYN.
* :class:`EncryptedRule` / :class:`SharedRule` (``rules``): one sequence
  stanza, checked when built; :func:`capture_filter` gives the listener's
  pcap filter for a set of rules.
* :class:`Collector` (``collector``): knocks in, :class:`Grant` /
  :class:`Refusal` decisions out; :meth:`Collector.expire` at
  :meth:`Collector.next_deadline`.
* :class:`OsDatabase` / :class:`OsRequirement` (``osfp``): pf.os and p0f v3
  signatures, ``REQUIRE_OS`` / ``REQUIRE_OS_REGEX``.
* :class:`SynMemory` (``synmemory``): recent SYNs by connection, for
  ``REQUIRE_OS`` in SPA stanzas (SPA over TCP).

Nothing here opens a file, a socket or reads a clock: signature files come in
as text, times come with the knocks.
"""

from __future__ import annotations

from .collector import (
    DEFAULT_MAX_SOURCES,
    Collector,
    Decision,
    Grant,
    MemoryReplay,
    Refusal,
    RefuseReason,
    ReplayGuard,
)
from .osfp import (
    DEFAULT_MAX_HOPS,
    OsDatabase,
    OsDatabaseError,
    OsGuess,
    OsRequirement,
    p0f_raw_signature,
    parse_p0f,
    parse_pf_os,
    pf_os_observed,
)
from .rules import (
    DEFAULT_FW_ACCESS_TIMEOUT,
    DEFAULT_KNOCK_INTERVAL,
    EncryptedRule,
    Rule,
    SharedRule,
    capture_filter,
    parse_knock_limit,
    parse_open_ports,
    parse_port_offset,
    parse_seconds,
    parse_usernames,
)
from .synmemory import SynMemory
from .wire import Knock, SynFingerprint, parse_knock, peek_knock

__all__ = [
    "DEFAULT_FW_ACCESS_TIMEOUT",
    "DEFAULT_KNOCK_INTERVAL",
    "DEFAULT_MAX_HOPS",
    "DEFAULT_MAX_SOURCES",
    "Collector",
    "Decision",
    "EncryptedRule",
    "Grant",
    "Knock",
    "MemoryReplay",
    "OsDatabase",
    "OsDatabaseError",
    "OsGuess",
    "OsRequirement",
    "Refusal",
    "RefuseReason",
    "ReplayGuard",
    "Rule",
    "SharedRule",
    "SynFingerprint",
    "SynMemory",
    "capture_filter",
    "p0f_raw_signature",
    "parse_knock",
    "parse_knock_limit",
    "parse_open_ports",
    "parse_p0f",
    "parse_pf_os",
    "parse_port_offset",
    "parse_seconds",
    "parse_usernames",
    "peek_knock",
    "pf_os_observed",
]
