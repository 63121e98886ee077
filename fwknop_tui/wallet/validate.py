"""Pure validators for profile fields, shared by the profile loader, the CLI and the TUI.

Each takes what a user typed or TOML gave (``str``, ``int``, ``bool``,
``list``) and returns the clean value, or raises ``FieldError`` (a
``ValueError``) with a message that names the field and never a secret.
The TUI's input validators are thin adapters over these functions.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from fwknop_core import (
    MAX_KNOCK_OFFSET,
    DigestType,
    EncryptionMode,
    HmacType,
    UsageError,
    validate_access_list,
    validate_allow_ip,
    validate_ipv4,
    validate_username,
)

__all__ = [
    "MAX_CLIENT_TIMEOUT",
    "PROFILE_NAME_PATTERN",
    "AllowIp",
    "FieldError",
    "Transport",
    "check_access",
    "check_address_family",
    "check_allow_ip",
    "check_bool",
    "check_client_timeout",
    "check_command",
    "check_digest_type",
    "check_encryption",
    "check_encryption_mode",
    "check_hmac_type",
    "check_host",
    "check_hostport",
    "check_int",
    "check_interval",
    "check_ipv4",
    "check_key_format",
    "check_knock_delay",
    "check_knock_offset",
    "check_knock_sequence",
    "check_line",
    "check_mode",
    "check_nat_access",
    "check_port",
    "check_profile_name",
    "check_resolve_url",
    "check_server_type",
    "check_time_offset",
    "check_transport",
    "check_username",
    "check_x25519_public_key",
    "format_time_offset",
    "split_hostport",
]

# patterns, compiled (and cached by re) on first use: most runs never need most of them
PROFILE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
MAX_CLIENT_TIMEOUT = 65536
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_INT = r"[+-]?[0-9]{1,20}"
_OFFSET = r"(?i)([+-]?)(\d{1,9})([smhd]?)"
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class FieldError(ValueError):
    """A field value is invalid; ``field`` names it (the message never holds a secret)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Transport(enum.StrEnum):
    """How the packet travels (``-P``)."""

    UDP = "udp"
    TCP = "tcp"
    HTTP = "http"
    ICMP = "icmp"
    UDPRAW = "udpraw"

    @property
    def raw(self) -> bool:
        """Needs a raw socket (root or CAP_NET_RAW), IPv4 only."""
        return self in (Transport.ICMP, Transport.UDPRAW)


class AllowIp(enum.StrEnum):
    """The symbolic allow-IP modes; anything else is a literal IPv4 address."""

    SOURCE = "source"
    RESOLVE = "resolve"
    ASK = "ask"


def _type_name(value: object) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "text"}
    names |= {list: "a list", tuple: "a list", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__} value")


def check_str(field: str, value: Any) -> str:
    """A string value."""
    if not isinstance(value, str):
        raise FieldError(
            field, f"must be text (in quotes in profiles.toml), not {_type_name(value)}"
        )
    return value


def check_line(field: str, value: Any, *, max_len: int = 255, empty: bool = True) -> str:
    """One line of printable text (no control characters)."""
    text = check_str(field, value)
    if not empty and not text:
        raise FieldError(field, "must not be empty")
    if len(text) > max_len:
        raise FieldError(field, f"must be at most {max_len} characters")
    if text and not text.isprintable():
        raise FieldError(field, "must be one line of printable text")
    return text


def check_bool(field: str, value: Any) -> bool:
    """A TOML boolean (or yes/no/true/false/y/n typed on a command line)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "y", "1", "on"):
            return True
        if low in ("false", "no", "n", "0", "off"):
            return False
    raise FieldError(field, f"must be true or false, not {value!r}")


def check_int(field: str, value: Any, lo: int, hi: int) -> int:
    """A whole number in ``lo..hi`` (number text from a command line or a form is accepted)."""
    want = f"must be a number from {lo} to {hi}"
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(_INT, text):
            raise FieldError(field, f"{want}, not {value!r}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if isinstance(value, float) else _type_name(value)
        raise FieldError(field, f"{want}, not {shown}")
    if not lo <= value <= hi:
        raise FieldError(field, f"{want}, not {value}")
    return value


def check_interval(field: str, value: Any, lo: float = 0.01, hi: float = 3600.0) -> float:
    """Seconds as a number in ``lo..hi``."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise FieldError(
                field, f"must be a number of seconds from {lo:g} to {hi:g}, not {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(
            field, f"must be a number of seconds from {lo:g} to {hi:g}, not {_type_name(value)}"
        )
    if not lo <= float(value) <= hi:
        raise FieldError(field, f"must be a number of seconds from {lo:g} to {hi:g}, not {value}")
    return float(value)


def check_port(field: str, value: Any, *, zero: bool = False) -> int:
    """A port 1..65535 (0 allowed when ``zero``: "let the system choose" / "unset")."""
    return check_int(field, value, 0 if zero else 1, 65535)


def check_profile_name(value: Any, field: str = "name") -> str:
    """Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64."""
    text = check_str(field, value)
    if not re.fullmatch(PROFILE_NAME_PATTERN, text):
        raise FieldError(
            field,
            f"profile name {text!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return text


def check_host(field: str, value: Any) -> str:
    """A host name, an IPv4 address or an IPv6 address (brackets are removed).

    Text made only of digits and dots must be a whole IPv4 address: ``198.18.``
    or ``198.18.0`` is a half-typed address, not a host name.
    """
    text = check_str(field, value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        raise FieldError(field, "must not be empty: give a host name or an IP address")
    if not text.isprintable() or len(text) > 253 or any(c.isspace() for c in text):
        raise FieldError(field, f"{text!r} is not a host name or an IP address")
    if ":" in text:
        import socket  # noqa: PLC0415 - a cheap IPv6 check without ipaddress

        try:
            return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
        except (OSError, ValueError):
            raise FieldError(field, f"{text!r} is not an IPv6 address") from None
    if not set(text) - set("0123456789."):
        try:
            return validate_ipv4(text, "address")
        except UsageError:
            raise FieldError(
                field,
                f"{text!r} is not a complete IPv4 address (four numbers from 0 to 255, "
                "like 198.18.0.1)",
            ) from None
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if not all(re.fullmatch(_LABEL, label) for label in labels):
        raise FieldError(
            field,
            f"{text!r} is not a host name (letters, digits and '-' between dots, "
            "like fw.example.org) or an IP address",
        )
    return text


def check_ipv4(field: str, value: Any) -> str:
    """A dotted-quad IPv4 address (IPv6 is refused with the reason)."""
    text = check_str(field, value).strip()
    if ":" in text:
        raise FieldError(
            field, f"{text} is IPv6; the SPA message carries only IPv4 addresses (fwknop 2.6)"
        )
    try:
        return validate_ipv4(text, field)
    except UsageError as exc:
        raise FieldError(field, str(exc)) from None


def check_allow_ip(value: Any, field: str = "allow_ip") -> str:
    """``source``, ``resolve``, ``ask``, an IPv4 address, or an IPv6 one.

    IPv6 needs ``server_type = "fwknop-tui"`` (a cross-field rule of the
    profile): the C fwknopd 2.6 refuses an IPv6 allow IP.
    """
    text = check_str(field, value).strip()
    if text.lower() in {m.value for m in AllowIp}:
        return text.lower()
    try:
        return validate_allow_ip(text, "allow IP", ipv6=True)
    except UsageError as exc:
        if ":" in text:
            raise FieldError(field, str(exc)) from None
        raise FieldError(
            field, f'{text!r} is not "source", "resolve", "ask" or an IP address'
        ) from None


SERVER_TYPES = ("fwknopd", "fwknop-tui")


def check_server_type(value: Any, field: str = "server_type") -> str:
    """fwknopd (the C fwknopd 2.6, or anything wire-compatible) or fwknop-tui (ours)."""
    text = check_str(field, value).strip().lower()
    if text not in SERVER_TYPES:
        raise FieldError(field, f"{value!r} is not fwknopd or fwknop-tui")
    return text


def check_resolve_url(value: Any, field: str = "resolve_url") -> str:
    """An https:// URL (the address lookup must not be spoofable on the path)."""
    text = check_line(field, value, max_len=2048, empty=False)
    if not text.lower().startswith("https://") or len(text) <= len("https://"):
        raise FieldError(field, f"must be an https:// URL, not {text!r}")
    return text


def check_transport(value: Any, field: str = "transport") -> Transport:
    """udp, tcp, http, icmp or udpraw."""
    text = check_str(field, value).strip().lower()
    try:
        return Transport(text)
    except ValueError:
        choices = ", ".join(t.value for t in Transport)
        raise FieldError(field, f"{value!r} is not one of {choices}") from None


def check_address_family(value: Any, field: str = "address_family") -> str:
    """any, ipv4 or ipv6."""
    text = check_str(field, value).strip().lower()
    if text not in ("any", "ipv4", "ipv6"):
        raise FieldError(field, f"{value!r} is not any, ipv4 or ipv6")
    return text


def check_access(value: Any, field: str = "access") -> tuple[str, ...]:
    """A list of ``proto/port`` items (or one comma-separated string)."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise FieldError(field, f"must be a list of proto/port strings, not {_type_name(value)}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise FieldError(field, f'item {item!r} is not text like "tcp/22"')
        if not item.strip():
            continue
        try:
            out.extend(str(spec) for spec in validate_access_list(item.strip()))
        except UsageError as exc:
            raise FieldError(field, str(exc)) from None
    return tuple(out)


def check_client_timeout(value: Any, field: str = "client_timeout") -> int:
    """Seconds the server keeps the rule, 0..65536 (0: the server's default)."""
    return check_int(field, value, 0, MAX_CLIENT_TIMEOUT)


def check_username(value: Any, field: str = "username") -> str:
    """Empty (use the login name) or a name fwknopd accepts."""
    text = check_str(field, value)
    if not text:
        return text
    try:
        return validate_username(text)
    except UsageError as exc:
        raise FieldError(field, str(exc)) from None


def check_time_offset(value: Any, field: str = "time_offset") -> int:
    """``"+5m"``, ``"-30s"``, ``"2h"``, ``"1d"`` or an integer of seconds -> seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = check_str(field, value).strip()
    m = re.fullmatch(_OFFSET, text)
    if not m:
        raise FieldError(field, f'{text!r} is not an offset like "+5m", "-30s", "2h" or "1d"')
    seconds = int(m.group(2)) * _UNITS[m.group(3).lower()]
    return -seconds if m.group(1) == "-" else seconds


def format_time_offset(seconds: int) -> str:
    """The shortest ``"+5m"``-style spelling of an offset."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else "+"
    n = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if n % size == 0:
            return f"{sign}{n // size}{unit}"
    return f"{sign}{n}s"


ENCRYPTIONS = ("rijndael", "gpg", "x25519")


def check_encryption(value: Any, field: str = "encryption") -> str:
    """rijndael, gpg or x25519 (fwknop-tui's public-key mode, for our server only)."""
    text = check_str(field, value).strip().lower()
    if text not in ENCRYPTIONS:
        raise FieldError(field, f"{value!r} is not rijndael, gpg or x25519")
    return text


def check_x25519_public_key(value: Any, field: str = "server_public_key") -> str:
    """Empty, or an X25519 public key ``x25519-pub:<base64>`` (a private key is refused)."""
    text = check_line(field, value, max_len=200).strip()
    if not text:
        return ""
    try:
        from fwknop_core import X25519PublicKey  # noqa: PLC0415 - only x25519 profiles need it

        return X25519PublicKey.from_text(text).to_text()
    except UsageError as exc:
        raise FieldError(field, str(exc)) from None


def check_encryption_mode(value: Any, field: str = "encryption_mode") -> EncryptionMode:
    """cbc, ctr, cfb, ofb, ecb or legacy."""
    text = check_str(field, value)
    try:
        mode = EncryptionMode.from_name(text)
    except UsageError:
        mode = None
    if mode is None or mode is EncryptionMode.ASYMMETRIC:
        raise FieldError(field, f"{text!r} is not one of cbc, ctr, cfb, ofb, ecb, legacy")
    return mode


def check_digest_type(value: Any, field: str = "digest_type") -> DigestType:
    """md5, sha1, sha256, sha384, sha512, sha3_256 or sha3_512."""
    try:
        return DigestType.from_name(check_str(field, value))
    except UsageError as exc:
        raise FieldError(field, str(exc)) from None


def check_hmac_type(value: Any, field: str = "hmac_type") -> HmacType | None:
    """``none`` (no HMAC) or a digest name."""
    text = check_str(field, value)
    if text.strip().lower() == "none":
        return None
    try:
        return HmacType.from_name(text)
    except UsageError as exc:
        raise FieldError(field, f"{exc} or none") from None


def check_key_format(value: Any, field: str = "key_format") -> str:
    """base64 (KEY_BASE64) or passphrase (KEY)."""
    text = check_str(field, value).strip().lower()
    if text not in ("base64", "passphrase"):
        raise FieldError(field, f"{value!r} is not base64 or passphrase")
    return text


def check_command(value: Any, field: str) -> tuple[str, ...]:
    """A command as an argv list, or a string split like a shell would (no shell runs)."""
    if isinstance(value, str):
        import shlex  # noqa: PLC0415

        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise FieldError(field, f"cannot split the command: {exc}") from None
    elif isinstance(value, list | tuple) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise FieldError(field, "must be a list of strings (argv) or a command string")
    if not argv or not argv[0]:
        raise FieldError(field, "must name a program")
    return tuple(argv)


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``host,port``, ``[v6]:port`` or ``:port`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith((":", ",")) else None
        if rest and port is None:
            raise ValueError(f"{text!r} is not [address]:port")
        return host, int(port) if port else None
    if text.count(":") > 1:  # a bare IPv6 address
        return text, None
    for sep in (":", ","):
        if sep in text:
            host, _, port = text.rpartition(sep)
            if not port.isdigit():
                raise ValueError(f"{text!r}: port {port!r} is not a number")
            return host, int(port)
    return text, None


def check_hostport(
    value: Any, field: str, *, need_port: bool = False, need_host: bool = True
) -> tuple[str, int | None]:
    """``host[:port]`` checked: a valid host and a port 1..65535."""
    text = check_line(field, value, empty=False)
    try:
        host, port = split_hostport(text)
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None
    if host or need_host:
        host = check_host(field, host)
    if port is not None:
        check_port(field, port)
    elif need_port:
        raise FieldError(field, f"{text!r} needs a port (host:port)")
    return host, port


def check_nat_access(value: Any, field: str = "nat_access") -> tuple[str, int | None]:
    """The internal ``host[:port]`` for NAT access (IPv4, a name, or ``[IPv6]:port``, which
    only fwknop-tui's fwknopd takes: the profile's cross-field check says so)."""
    return check_hostport(value, field)


# -- fwknop 1.x knock sequences (mode = "knock") ---------------------------------------

MODES = ("spa", "knock")
MAX_KNOCK_STEPS = 64
MAX_KNOCK_DELAY = 60.0


def check_mode(value: Any, field: str = "mode") -> str:
    """spa (one SPA packet, the default) or knock (a fwknop 1.x knock sequence)."""
    text = check_str(field, value).strip().lower()
    if text not in MODES:
        raise FieldError(field, f"{value!r} is not spa or knock")
    return text


def check_knock_sequence(value: Any, field: str = "knock_sequence") -> tuple[str, ...]:
    """A shared sequence: ``tcp/N``, ``udp/N`` and ``icmp`` steps (empty: an encrypted one)."""
    if isinstance(value, str):
        parts: list[Any] = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise FieldError(field, f"must be a list of steps, not {_type_name(value)}")
    if not parts:
        return ()
    try:
        from fwknop_core import parse_shared_sequence  # noqa: PLC0415 - only knock profiles

        steps = parse_shared_sequence([str(p) if isinstance(p, str) else p for p in parts])
    except (UsageError, TypeError) as exc:
        raise FieldError(field, str(exc)) from None
    if len(steps) > MAX_KNOCK_STEPS:
        raise FieldError(field, f"at most {MAX_KNOCK_STEPS} steps, not {len(steps)}")
    return tuple(str(step) for step in steps)


def check_knock_offset(value: Any, field: str = "knock_offset") -> int:
    """The base of the 256 knock ports (1.x ``--offset``; the server's PORT_OFFSET)."""
    return check_int(field, value, 1, MAX_KNOCK_OFFSET)


def check_knock_delay(value: Any, field: str = "knock_delay") -> float:
    """Seconds between knocks (1.x ``--time-delay``, default 1)."""
    return check_interval(field, value, 0.0, MAX_KNOCK_DELAY)
