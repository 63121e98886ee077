"""``fwknopd --os``: the passive OS fingerprint of every TCP SYN, from a capture file or live.

fwknop 1.x's ``--os`` read iptables LOG lines (``--fw-log FILE``), waited
for new ones and printed, per source, the pf.os signatures that matched.
Ours reads packets, as the daemon does: ``--pcap-file FILE`` (a ``tcpdump
-w`` capture: every SYN in it, then exit) or, without it, a live capture on
``PCAP_INTF`` (until ``-C N`` SYNs or Ctrl-C). Per SYN it prints who sent
it where, its p0f v3 raw signature and its pf.os form (what to paste into
a signature file of your own), then each guess of the signature files
(``P0F_FILE``, ``P0F_FP_FILE``) with the signature that matched; "no
signature matches" is the usual answer for current systems.
"""

from __future__ import annotations

import select
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from .capture.frames import network_layer
from .capture.libpcap import read_file
from .capture.syn import KnockSource
from .knock import OsDatabase, p0f_raw_signature, parse_knock, pf_os_observed
from .knock.wire import Knock

__all__ = ["SYN_FILTER", "describe", "run"]

# every pure SYN, IPv4 and IPv6 (libpcap's tcp[] reads IPv4 only: the IPv6 flags by hand)
SYN_FILTER = (
    "(tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst|tcp-fin) == tcp-syn) or "
    "(ip6 and tcp and ip6[53] & 0x17 == 0x02)"
)
_WAIT = 0.5


def describe(knock: Knock, database: OsDatabase | None) -> str:
    """The lines ``--os`` prints for one SYN."""
    syn = knock.syn
    assert syn is not None  # noqa: S101 - only SYNs are described
    lines = [
        f"{_endpoint(knock.source, knock.sport)} -> {_endpoint(knock.destination, knock.port)}"
        f"  p0f {p0f_raw_signature(syn)}  pf.os {pf_os_observed(syn)}"
    ]
    if database is None:
        lines.append("      (no signature files: set P0F_FILE or P0F_FP_FILE)")
        return "\n".join(lines)
    guesses = database.guesses(syn)
    for guess in guesses:
        lines.append(f"      {guess.database:<6} {guess!s:<40} {guess.signature}")
    if not guesses:
        lines.append("      no signature matches")
    return "\n".join(lines)


def _endpoint(address: object, port: int | None) -> str:
    text = str(address)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _from_file(path: Path) -> Iterator[Knock]:
    for linktype, stamp, frame in read_file(path, SYN_FILTER):
        ip = network_layer(linktype, frame)
        knock = None if ip is None else parse_knock(ip, stamp)
        if knock is not None and knock.syn is not None:
            yield knock


def _live(interface: str, stopping: list[bool]) -> Iterator[Knock]:
    source = KnockSource(interface, SYN_FILTER)
    try:
        while not stopping:
            ready, _, _ = select.select([source.fileno()], [], [], _WAIT)
            if not ready:
                continue
            for ip in source.read():
                knock = parse_knock(ip, 0.0)
                if knock is not None and knock.syn is not None:
                    yield knock
    finally:
        source.close()


def run(
    database: OsDatabase | None,
    out: TextIO,
    *,
    pcap_file: Path | None,
    interface: str,
    limit: int = 0,
) -> int:
    """Print each SYN's fingerprint; how many SYNs were seen."""
    stopping: list[bool] = []
    previous: dict[signal.Signals, object] = {}
    if pcap_file is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda _s, _f: stopping.append(True))
        out.write(f"fingerprinting TCP SYNs on {interface} (Ctrl-C to stop)\n")
        out.flush()
    seen = 0
    try:
        knocks = _from_file(pcap_file) if pcap_file is not None else _live(interface, stopping)
        for knock in knocks:
            out.write(describe(knock, database) + "\n")
            out.flush()
            seen += 1
            if limit and seen >= limit:
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
    return seen
