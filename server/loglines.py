"""What a decided packet looks like in the log: fwknopd's lines, then our verdict.

Anything that watches fwknopd's log (fwknop's own test suite, logwatch rules,
fail2ban filters written for fwknopd) matches fwknopd 2.6.10's wording, so a
packet's story is told in its words and order first: for each stanza whose
SOURCE matched, ``(stanza #N) SPA Packet from IP: <ip> received with access
source match`` and, when that stanza refused, its reason (``Reason.fwknopd``
in ``vocab.py``, the one table of wordings). That is also logged when a
later stanza grants, as fwknopd does.

What fwknopd lacks comes after, in our own words: one verdict line per
refused packet, ``refused SPA packet from <ip> <proto>/<port>[ (stanza #N)]:
<reason>``, the line our fail2ban filter reads (``contrib/fail2ban``). It
names the source of every refusal, and a grant never produces one (the
stanza lines of a granted packet do not say "refused").

fwknopd's ``-v -v`` dump (the packet's text, the decrypted fields) goes out
at ``TRACE``, which ``-v -v`` turns on. These are pure functions: the
dispatcher asks for the lines only of what its rate limit lets through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

from fwknop_core import OpenedPacket, X25519Opened, classify

from .vocab import Attempt, Packet, Reason, Refused, proto_name

__all__ = ["TRACE", "LogLine", "dump", "granted_lines", "refusal_lines"]

TRACE: Final = 5  # -v -v: fwknopd's packet dumps
LogLine = tuple[int, str]  # (logging level, message)
Opened = OpenedPacket | X25519Opened[Any]  # what a packet held, once a stanza opened it

# fwknopd logs these only with -v -v (every stray datagram is one)
_TRACE_ONLY: Final = frozenset({Reason.NOT_SPA, Reason.PREFIX_STUFFING})
# a stanza that refused for one of these had decrypted the packet (the enum's order is the
# pipeline's): -v -v dumps what it held there, as fwknopd does
_DECRYPTED: Final = frozenset(list(Reason)[list(Reason).index(Reason.MALFORMED) + 1 :])


def _fields(packet: Packet, stanza: int | None, detail: str) -> dict[str, object]:
    return {
        "src": packet.src,
        "dst": packet.dst if packet.dst is not None else "0.0.0.0",  # noqa: S104 - a wording
        "n": stanza,
        "detail": detail,
        "proto": packet.proto,
        "dport": packet.dport,
        "enc": classify(packet.payload).value,
    }


def _stanza_line(packet: Packet, number: int, reason: Reason, detail: str) -> str:
    """What stanza ``number`` says when it refuses: fwknopd's line, or ours in its form."""
    if reason.fwknopd is not None:
        return reason.fwknopd.format_map(_fields(packet, number, detail))
    return f"[{packet.src}] (stanza #{number}) {reason.text}{f': {detail}' if detail else ''}"


def _received(packet: Packet, number: int, *, trace: bool) -> Iterable[LogLine]:
    yield (
        logging.INFO,
        f"(stanza #{number}) SPA Packet from IP: {packet.src} received with access source match",
    )
    if trace:
        # escaped: an HTTP request carries line breaks, and no packet writes log lines
        text = packet.payload.decode("latin-1").encode("unicode_escape").decode("ascii")
        yield TRACE, f"SPA Packet: '{text}'"


def _stanzas(
    packet: Packet,
    attempts: Iterable[Attempt],
    opened: Opened | None,
    *,
    trace: bool,
) -> Iterable[LogLine]:
    for number, reason, detail in attempts:
        if reason is not Reason.DESTINATION:  # fwknopd says it filtered that one, no more
            yield from _received(packet, number, trace=trace)
        if trace and isinstance(opened, OpenedPacket) and reason in _DECRYPTED:
            yield TRACE, dump(packet, number, opened)
        yield logging.WARNING, _stanza_line(packet, number, reason, detail)


def refusal_lines(refused: Refused, packet: Packet, *, trace: bool = False) -> list[LogLine]:
    """The lines for a refused packet: each stanza's (as fwknopd), then our verdict."""
    reason = refused.reason
    lines: list[LogLine] = []
    if reason is Reason.REPLAY or not refused.attempts:
        # before any stanza (fwknopd looks for replays before its stanza loop, too)
        if reason.fwknopd is not None and (trace or reason not in _TRACE_ONLY):
            line = reason.fwknopd.format_map(_fields(packet, refused.stanza, refused.detail))
            lines.append((TRACE if reason in _TRACE_ONLY else logging.WARNING, line))
    else:
        lines.extend(_stanzas(packet, refused.attempts, refused.opened, trace=trace))
    where = f" (stanza #{refused.stanza})" if refused.stanza else ""
    detail = f": {refused.detail}" if refused.detail else ""
    # fwknopd logs nothing for a packet of the wrong size; we do, but as information
    # (any stray datagram is one), rate-limited like every other refusal
    lines.append((
        logging.INFO if refused.silent else logging.WARNING,
        f"refused SPA packet from {packet.src} {proto_name(packet.proto)}/{packet.dport}"
        f"{where}: {reason.text}{detail}",
    ))  # fmt: skip
    return lines


def granted_lines(
    packet: Packet,
    attempts: Iterable[Attempt],
    stanza: int,
    opened: Opened | None,
    *,
    trace: bool = False,
) -> list[LogLine]:
    """The lines fwknopd logs before it acts on a packet stanza ``stanza`` takes."""
    lines = list(_stanzas(packet, attempts, opened, trace=trace))
    lines.extend(_received(packet, stanza, trace=trace))
    if trace and isinstance(opened, OpenedPacket):  # an x25519 packet has none of its fields
        lines.append((TRACE, dump(packet, stanza, opened)))
    return lines


def _without(wire: str, hmac: str | None) -> str:
    return wire[: -len(hmac)] if hmac and wire.endswith(hmac) else wire


def _or_null(value: object) -> str:
    return "<NULL>" if value is None or value == "" else str(value)


def dump(packet: Packet, stanza: int, opened: OpenedPacket) -> str:
    """fwknopd's ``-v -v`` dump of a decrypted packet's fields (a server password is hidden)."""
    msg = opened.message
    hmac_type = opened.hmac_type
    rows = [
        ("Random Value", msg.random_value),
        ("Username", msg.username),
        ("Timestamp", msg.timestamp),
        ("FKO Version", msg.version),
        ("Message Type", f"{msg.message_type.value} ({msg.message_type.label})"),
        ("Message String", msg.message),
        ("Nat Access", _or_null(msg.nat_access)),
        ("Server Auth", "<NULL>" if not msg.server_auth else "<hidden>"),
        ("Client Timeout", msg.client_timeout),
        ("Digest Type", f"{opened.digest_type.value} ({opened.digest_type.label})"),
        (
            "HMAC Type",
            "0 (None)" if hmac_type is None else f"{hmac_type.value} ({hmac_type.label})",
        ),
        ("Encryption Type", f"{opened.encryption_type.value} ({opened.encryption_type.label})"),
        ("Encryption Mode", f"{opened.encryption_mode.value} ({opened.encryption_mode.label})"),
        ("Encoded Data", opened.encoded),
        ("SPA Data Digest", opened.digest),
        ("HMAC", _or_null(opened.hmac)),
        ("Final SPA Data", _without(opened.wire, opened.hmac)),  # fwknopd's: the HMAC taken off
    ]
    body = "\n".join(f"{name:>15}: {value}" for name, value in rows)
    return (
        f"[{packet.src}] (stanza #{stanza}) SPA Decode (res=0):\n"
        f"SPA Field Values:\n=================\n{body}\n"
    )
