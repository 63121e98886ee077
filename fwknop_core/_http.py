"""SPA carried in an HTTP GET (spa-protocol.md §7.2-7.3): the request and its extraction.

The client sends ``GET /<data>`` with ``+`` and ``/`` turned into ``-`` and
``_``; fwknopd 2.6.10 takes the text after ``GET /`` up to the first
whitespace, turns the characters back, and insists on a ``User-Agent:
Fwknop`` header (later versions can drop that check).

An ``X-Forwarded-For`` header names the address to open for (a 0.0.0.0
allow IP, ``ENABLE_X_FORWARDED_FOR``). Its first item must be an IPv4
address, read as fwknopd reads it (``inet_aton``: a leading zero is octal);
anything else raises ``InvalidPacket(BAD_FORWARDED_FOR)``. fwknopd logs
such a header and opens for the packet's source instead, which behind a
proxy is the proxy: everyone behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import InvalidPacket, RejectReason, UsageError
from ._message import dotted_decimal

__all__ = ["DEFAULT_USER_AGENT", "HttpSpa", "encode_http_request", "extract_http_spa"]

DEFAULT_USER_AGENT = "Fwknop/2.6.10"
_TO_URL = str.maketrans("+/", "-_")
_FROM_URL = str.maketrans("-_", "+/")
_XFF = re.compile(rb"\nX-Forwarded-For:([^\r\n]*)", re.IGNORECASE)


def encode_http_request(
    wire: str,
    *,
    host: str,
    user_agent: str = DEFAULT_USER_AGENT,
    via_proxy: bool = False,
) -> bytes:
    """The HTTP/1.0 request the real client sends (absolute URL when ``via_proxy``)."""
    for name, value in (("host", host), ("user_agent", user_agent)):
        if not value or any(c in value for c in "\r\n"):
            raise UsageError(f"HTTP {name} must be one non-empty line")
    path = "/" + wire.translate(_TO_URL)
    target = f"http://{host}{path}" if via_proxy else path
    return (
        f"GET {target} HTTP/1.0\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n"
        f"Host: {host}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class HttpSpa:
    """SPA data found in an HTTP request, and the X-Forwarded-For address if any."""

    data: str
    forwarded_for: str | None


def extract_http_spa(
    payload: bytes, *, any_user_agent: bool = False, forwarded_for: bool = True
) -> HttpSpa | None:
    """The SPA data of an HTTP request as fwknopd reads it, or None if it is not one.

    With ``forwarded_for`` (fwknopd's ``ENABLE_X_FORWARDED_FOR``) an
    ``X-Forwarded-For`` header is read too: ``HttpSpa.forwarded_for`` is its
    address in dotted decimal, and ``InvalidPacket`` is raised if it names none.
    """
    if payload[:5].upper() != b"GET /":
        return None
    if not any_user_agent and b"User-Agent: Fwknop" not in payload:
        return None
    end = len(payload)
    for i in range(5, len(payload)):
        if payload[i] in b" \t\r\n":
            end = i
            break
    try:
        data = payload[5:end].decode("ascii").translate(_FROM_URL)
    except UnicodeDecodeError:
        return None
    xff = _XFF.search(payload) if forwarded_for else None
    return HttpSpa(data, None if xff is None else _forwarded_address(xff.group(1)))


def _forwarded_address(value: bytes) -> str:
    """The client's address in an ``X-Forwarded-For`` value (its first item)."""
    first = value.split(b",", 1)[0].strip(b" \t").decode("ascii", "replace")
    try:
        return dotted_decimal(first, "X-Forwarded-For")
    except UsageError:
        shown = value.strip(b" \t")[:40].decode("ascii", "replace")
        raise InvalidPacket(RejectReason.BAD_FORWARDED_FOR, repr(shown)) from None
