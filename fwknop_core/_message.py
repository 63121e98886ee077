"""The plaintext SPA message: a frozen value that cannot exist in an invalid state.

Validation follows the rules libfko applies on receipt (spa-protocol.md §2),
so every ``SpaMessage`` encodes to fields the real fwknopd accepts, and every
packet fwknopd accepts decodes to a ``SpaMessage``. The validators are public
so that the wallet and the TUI check user input with the very same rules.

Where fwknop is looser than its own receiver, we are stricter on the sending
side: a username whose base64 would exceed the 64-character field bound is
refused here (the C client truncates to 63 characters and the C server then
rejects the packet).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._b64 import b64s_decode, b64s_encode
from ._errors import UsageError
from ._types import MessageType

__all__ = [
    "PROTOCOL_VERSION",
    "AccessSpec",
    "NatAccess",
    "SpaMessage",
    "dotted_decimal",
    "random_value",
    "validate_access_list",
    "validate_allow_ip",
    "validate_ipv4",
    "validate_nat_access",
    "validate_username",
]

PROTOCOL_VERSION = "3.0.0"
MAX_MESSAGE = 255  # raw message string must be < 256 characters
MAX_B64_FIELD = 256
MAX_B64_USERNAME = 64
MAX_NAT_ACCESS = 127
MAX_SERVER_AUTH = 63
MAX_CLIENT_TIMEOUT = 65536
_PROTOS = ("tcp", "udp", "icmp", "none")
_USER_FORBIDDEN = frozenset('"/\\[]:;|=,+*?<>')
_USER_BAD_CHAR = re.compile(r'[^ -~]|["/\\\[\]:;|=,+*?<>]')
_NAT_HOST_FORBIDDEN = frozenset(" /?\"'\\")
_DIGITS = frozenset("0123456789")


_MESSAGE_TYPES = tuple(MessageType)  # indexed by code, cheaper than the enum call


def _digits(text: str) -> bool:
    """Non-empty and only 0-9 (``isdigit`` alone would take other scripts' digits)."""
    return text.isascii() and text.isdigit()


# the common spelling of an address: four decimal octets without leading zeros
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")

Rng = Callable[[int], bytes]


def _inet_aton_part(part: str) -> int | None:
    # inet_aton reads each part like strtoul(base 0); with digits only this
    # means decimal, or octal when there is a leading zero.
    if not part:
        return None
    if len(part) > 1 and part[0] == "0":
        if set(part) - set("01234567"):
            return None
        return int(part, 8)
    return int(part)


def _b64s_length(n: int) -> int:
    """Length of the unpadded base64 of ``n`` bytes (fields are measured, not encoded)."""
    return (4 * n + 2) // 3


def validate_ipv4(text: str, what: str = "IP address") -> str:
    """Check an allow IP as fwknop does: dotted quad, 7..15 characters, digits and dots."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str")
    if _PLAIN_IPV4.fullmatch(text):
        return text
    # the rest is what inet_aton also takes: octal parts with a leading zero
    if not 7 <= len(text) <= 15 or text.count(".") != 3 or set(text) - _DIGITS - {"."}:
        raise UsageError(f"{what} {text!r} is not a dotted-quad IPv4 address")
    for part in text.split("."):
        value = _inet_aton_part(part)
        if value is None or value > 255:
            raise UsageError(f"{what} {text!r} is not a valid IPv4 address")
    return text


def dotted_decimal(text: str, what: str = "IP address") -> str:
    """The address an IPv4 text names, as ``inet_aton`` reads it, in plain dotted decimal.

    ``198.017.0.2`` is 198.15.0.2: fwknopd checks an allow IP with
    ``inet_aton`` and iptables opens what the text names the same way.
    ``UsageError`` if :func:`validate_ipv4` refuses the text.
    """
    validate_ipv4(text, what)
    if _PLAIN_IPV4.fullmatch(text):
        return text
    return ".".join(str(_inet_aton_part(part)) for part in text.split("."))


def validate_allow_ip(text: str, what: str = "allow IP", *, ipv6: bool = False) -> str:
    """An allow IP: IPv4 as fwknop 2.6 has it, or (``ipv6=True``) an IPv6 address.

    IPv6 allow IPs are an fwknop-tui extension: the message carries the
    address as text (``2001:db8::2,tcp/22``), which fwknopd 2.6 refuses; only
    a server that says it takes them (fwknop-tui's fwknopd) should get one.
    The address is kept as given; zone indexes and IPv4-mapped addresses are
    refused (give the IPv4 address instead).
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str")
    if ":" not in text:
        return validate_ipv4(text, what)
    if not ipv6:
        raise UsageError(
            f"{what} {text!r} is IPv6: fwknopd 2.6 only takes an IPv4 allow IP "
            "(an IPv6 allow IP needs a server that accepts it, such as fwknop-tui's fwknopd)"
        )
    if len(text) > 39 or "%" in text or not set(text) <= _IPV6_CHARS:
        raise UsageError(f"{what} {text!r} is not an IPv6 address")
    import ipaddress  # noqa: PLC0415 - only IPv6 allow IPs pay for it (fwknop send starts fast)

    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an IPv6 address") from None
    if address.ipv4_mapped is not None:
        raise UsageError(f"{what} {text!r} is an IPv4-mapped address: give {address.ipv4_mapped}")
    return text


@dataclass(frozen=True, slots=True)
class AccessSpec:
    """One ``proto/port`` item of an access request."""

    proto: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.proto, str) or not isinstance(self.port, int):
            raise TypeError("AccessSpec takes (str, int)")
        _check_spec(self.proto, str(self.port), f"{self.proto}/{self.port}")

    def __str__(self) -> str:
        return f"{self.proto}/{self.port}"

    @classmethod
    def parse(cls, text: str) -> AccessSpec:
        """Parse ``tcp/22``; ``UsageError`` names the offending item."""
        proto, sep, port = text.partition("/")
        if not sep:
            raise UsageError(f"access item {text!r} is not proto/port")
        _check_spec(proto, port, text)
        return cls(proto, int(port))


def _check_spec(proto: str, port: str, text: str) -> None:
    if not 1 <= len(proto) <= 4 or not proto.startswith(_PROTOS) or "," in proto:
        raise UsageError(f"access item {text!r}: protocol must be tcp, udp or icmp")
    if not 1 <= len(port) <= 5 or not _digits(port) or not 1 <= int(port) <= 65535:
        raise UsageError(f"access item {text!r}: port must be 1..65535")


def validate_access_list(text: str) -> tuple[AccessSpec, ...]:
    """Parse ``tcp/22,udp/53`` into specs; spaces after commas are tolerated."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or not all(items):
        raise UsageError(f"access list {text!r} must be proto/port[,proto/port...]")
    return tuple(AccessSpec.parse(item) for item in items)


@dataclass(frozen=True, slots=True)
class NatAccess:
    """The NAT field: the internal host and port to forward to."""

    host: str
    port: int

    def __post_init__(self) -> None:
        host = self.host
        if not isinstance(host, str) or not isinstance(self.port, int):
            raise TypeError("NatAccess takes (str, int)")
        if not host or len(host) > 70 or _NAT_HOST_FORBIDDEN & set(host) or "," in host:
            raise UsageError(f"NAT host {host!r} is not a valid address or host name")
        if not host.isascii() or not host.isprintable() or (":" in host and not _ipv6(host)):
            raise UsageError(f"NAT host {host!r} is not a valid address or host name")
        if not 1 <= self.port <= 65535:
            raise UsageError(f"NAT port {self.port} is not in 1..65535")

    def __str__(self) -> str:
        return f"{self.host},{self.port}"

    @classmethod
    def parse(cls, text: str) -> NatAccess:
        """Parse the wire form ``host,port``."""
        return validate_nat_access(text)


def _ipv6(host: str) -> bool:
    """An IPv6 address: a NAT host only fwknop-tui's fwknopd takes (for an IPv6 client)."""
    import ipaddress  # noqa: PLC0415 - only for such a host (fwknop send's cold start)

    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def validate_nat_access(text: str) -> NatAccess:
    """Parse and check a NAT string ``host,port`` (exactly one comma)."""
    host, sep, port = text.partition(",")
    if not sep or "," in port or not _digits(port) or len(port) > 5:
        raise UsageError(f"NAT access {text!r} must be host,port")
    return NatAccess(host, int(port))


def validate_username(name: str) -> str:
    """Check a username: printable ASCII without ``"/\\[]:;|=,+*?<>``, at most 48 bytes."""
    if not isinstance(name, str):
        raise TypeError("username must be a str")
    if not name:
        raise UsageError("username must not be empty")
    if _USER_BAD_CHAR.search(name):
        bad = {c for c in name if c in _USER_FORBIDDEN or not (" " <= c <= "~")}
        shown = "".join(sorted(bad))
        raise UsageError(f"username {name!r} contains characters fwknop refuses: {shown!r}")
    if _b64s_length(len(name)) > MAX_B64_USERNAME:
        raise UsageError(f"username {name!r} is longer than 48 characters")
    return name


def random_value(rng: Rng | None = None) -> str:
    """Sixteen random decimal digits (field 1), from ``rng`` (default ``os.urandom``)."""
    raw = (rng or os.urandom)(8)
    return f"{int.from_bytes(raw, 'big') % 10**16:016d}"


def _check_text(value: str, what: str, max_len: int) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str")
    if not value or len(value) > max_len:
        raise UsageError(f"{what} must be 1..{max_len} characters")
    if not value.isascii() or not value.isprintable():
        raise UsageError(f"{what} must be printable ASCII")


@dataclass(frozen=True, slots=True)
class SpaMessage:
    """Every field of one SPA message, validated on construction.

    Build one with :meth:`access` or :meth:`command`, which stamp the time
    and a random value; the plain constructor takes every field explicitly
    (tests, decoding).
    """

    random_value: str
    username: str
    timestamp: int
    message_type: MessageType
    message: str
    nat_access: str | None = None
    server_auth: str | None = None
    client_timeout: int = 0
    version: str = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        rv = self.random_value
        if not isinstance(rv, str) or len(rv) != 16 or not _digits(rv):
            raise UsageError("random value must be 16 decimal digits")
        validate_username(self.username)
        if type(self.timestamp) is not int:
            raise TypeError("timestamp must be an int")
        if not 0 <= self.timestamp < 10**12:
            raise UsageError("timestamp must be 0..999999999999")
        if not isinstance(self.message_type, MessageType):
            object.__setattr__(self, "message_type", MessageType(self.message_type))
        _check_text(self.version, "version", 8)
        if ":" in self.version:
            raise UsageError("version must not contain ':'")
        _check_text(self.message, "message", MAX_MESSAGE)
        self._check_message()
        mtype = self.message_type
        if mtype.has_nat:
            if self.nat_access is None:
                raise UsageError(f"a {mtype.label} needs a NAT access field")
            _check_text(self.nat_access, "NAT access", MAX_NAT_ACCESS)
            validate_nat_access(self.nat_access)
        elif self.nat_access is not None:
            raise UsageError(f"a {mtype.label} cannot carry a NAT access field")
        if self.server_auth is not None:
            _check_text(self.server_auth, "server auth", MAX_SERVER_AUTH)
        if type(self.client_timeout) is not int:
            raise TypeError("client_timeout must be an int")
        if not 0 <= self.client_timeout <= MAX_CLIENT_TIMEOUT:
            raise UsageError(f"client timeout must be 0..{MAX_CLIENT_TIMEOUT} seconds")
        if self.client_timeout and not mtype.has_timeout:
            raise UsageError(f"a {mtype.label} cannot carry a client timeout")
        if mtype.has_timeout and not self.client_timeout and self.server_auth is not None:
            # the timeout field is omitted when 0, so the receiver would read
            # the server-auth field as the timeout
            raise UsageError(f"a {mtype.label} with server auth needs a client timeout > 0")

    def _check_message(self) -> None:
        ip, sep, rest = self.message.partition(",")
        if not sep:
            raise UsageError("message must be IP,access or IP,command")
        validate_allow_ip(ip, ipv6=True)  # whether a receiver takes IPv6 is its policy
        if self.message_type is MessageType.COMMAND:
            if not rest:
                raise UsageError("command message has no command after the comma")
        else:
            items = rest.split(",")
            if not all(items):
                raise UsageError(f"access list {rest!r} has an empty item")
            for item in items:
                proto, slash, port = item.partition("/")
                if not slash:
                    raise UsageError(f"access item {item!r} is not proto/port")
                _check_spec(proto, port, item)
        if _b64s_length(len(self.message)) > MAX_B64_FIELD:
            raise UsageError("message is too long (its base64 must fit 256 characters)")

    # -- derived views ------------------------------------------------------

    @property
    def allow_ip(self) -> str:
        """The address the server should open for (``0.0.0.0`` = packet source)."""
        return self.message.partition(",")[0]

    @property
    def allow_address(self) -> str:
        """The address to open for, as fwknopd reads the allow IP (``198.017.0.2``: 198.15.0.2)."""
        ip = self.allow_ip
        return ip if ":" in ip else dotted_decimal(ip)

    @property
    def allow_ip_is_ipv6(self) -> bool:
        """Whether the allow IP is IPv6 (an fwknop-tui extension fwknopd 2.6 refuses)."""
        return ":" in self.message.partition(",")[0]

    @property
    def access(self) -> tuple[AccessSpec, ...]:
        """Requested ``proto/port`` items (empty for a command message)."""
        if self.message_type is MessageType.COMMAND:
            return ()
        return tuple(AccessSpec.parse(item) for item in self.message.split(",")[1:])

    @property
    def command(self) -> str | None:
        """The command text of a command message, else ``None``."""
        if self.message_type is not MessageType.COMMAND:
            return None
        return self.message.partition(",")[2]

    @property
    def nat(self) -> NatAccess | None:
        """The parsed NAT field, if any."""
        return None if self.nat_access is None else validate_nat_access(self.nat_access)

    # -- constructors ------------------------------------------------------

    @classmethod
    def access_request(
        cls,
        allow_ip: str,
        access: str | Iterable[str | AccessSpec],
        *,
        username: str,
        client_timeout: int = 0,
        nat: NatAccess | str | None = None,
        local_nat: bool = False,
        server_auth: str | None = None,
        now: float | None = None,
        rng: Rng | None = None,
        allow_ipv6: bool = False,
    ) -> SpaMessage:
        """An access message (types 1-6), typed from the NAT and timeout arguments.

        ``client_timeout > 0`` selects a client-timeout type; ``nat`` selects
        NAT access, or local NAT with ``local_nat=True``. ``allow_ipv6``
        permits an IPv6 ``allow_ip`` (see :func:`validate_allow_ip`).
        """
        specs = (
            validate_access_list(access)
            if isinstance(access, str)
            else tuple(a if isinstance(a, AccessSpec) else AccessSpec.parse(a) for a in access)
        )
        if not specs:
            raise UsageError("access list is empty")
        if local_nat and nat is None:
            raise UsageError("local NAT needs the NAT field (server address and port)")
        nat_text = (
            None
            if nat is None
            else str(nat if isinstance(nat, NatAccess) else validate_nat_access(nat))
        )
        if nat_text is not None and len(specs) != 1:
            raise UsageError("NAT access takes exactly one proto/port")
        mtype = MessageType.ACCESS
        if nat_text is not None:
            mtype = MessageType.LOCAL_NAT_ACCESS if local_nat else MessageType.NAT_ACCESS
        mtype = mtype.with_timeout(client_timeout > 0)
        validate_allow_ip(allow_ip, ipv6=allow_ipv6)
        return cls(
            random_value=random_value(rng),
            username=username,
            timestamp=int(time.time() if now is None else now),
            message_type=mtype,
            message=f"{allow_ip}," + ",".join(str(s) for s in specs),
            nat_access=nat_text,
            server_auth=server_auth,
            client_timeout=client_timeout,
        )

    @classmethod
    def command_request(
        cls,
        allow_ip: str,
        command: str,
        *,
        username: str,
        server_auth: str | None = None,
        now: float | None = None,
        rng: Rng | None = None,
        allow_ipv6: bool = False,
    ) -> SpaMessage:
        """A command message (type 0) asking the server to run ``command``."""
        validate_allow_ip(allow_ip, ipv6=allow_ipv6)
        return cls(
            random_value=random_value(rng),
            username=username,
            timestamp=int(time.time() if now is None else now),
            message_type=MessageType.COMMAND,
            message=f"{allow_ip},{command}",
            server_auth=server_auth,
        )

    # -- wire form -----------------------------------------------------------

    def encode(self) -> str:
        """The encoded message ``E`` (colon-separated fields, no digest)."""
        parts = [
            self.random_value,
            b64s_encode(self.username.encode("ascii")),
            str(self.timestamp),
            self.version,
            str(int(self.message_type)),
            b64s_encode(self.message.encode("ascii")),
        ]
        if self.nat_access is not None:
            parts.append(b64s_encode(self.nat_access.encode("ascii")))
        if self.server_auth is not None:
            parts.append(b64s_encode(self.server_auth.encode("ascii")))
        if self.message_type.has_timeout and self.client_timeout > 0:
            parts.append(str(self.client_timeout))
        return ":".join(parts)

    @classmethod
    def decode(cls, encoded: str) -> SpaMessage:
        """Parse ``E`` (digest already removed); ``ValueError`` says which field is bad."""
        fields = encoded.split(":")
        if len(fields) < 6:
            raise ValueError(f"{len(fields)} fields, at least 6 needed")
        rand, user_b64, ts, version, mtype_text, msg_b64, *rest = fields
        if len(rand) < 16:
            raise ValueError("random value shorter than 16 characters")
        if not 1 <= len(ts) <= 12 or not _digits(ts):
            raise ValueError("timestamp field")
        if not 1 <= len(mtype_text) <= 2 or not _digits(mtype_text):
            raise ValueError("message type field")
        code = int(mtype_text)
        if code >= len(_MESSAGE_TYPES):
            raise ValueError("unknown message type")
        mtype = _MESSAGE_TYPES[code]
        max_rest = 3 if mtype in (4, 6) else 2 if mtype in (2, 3, 5) else 1
        if len(rest) > max_rest:
            raise ValueError("too many fields for the message type")
        nat = None
        if mtype.has_nat:
            if not rest:
                raise ValueError("NAT field missing")
            nat = _decode_field(rest.pop(0), "NAT access", MAX_B64_FIELD)
        auth = None
        timeout = 0
        if rest and mtype.has_timeout:
            tfield = rest.pop()
            if not _digits(tfield) or len(tfield) > 5:
                raise ValueError("client timeout field")
            timeout = int(tfield)
        if rest:
            auth = _decode_field(rest.pop(0), "server auth", MAX_B64_FIELD)
        if not 1 <= len(user_b64) <= MAX_B64_USERNAME:
            raise ValueError("username field length")
        try:
            return cls(
                random_value=rand[:16],
                username=_decode_field(user_b64, "username", MAX_B64_USERNAME),
                timestamp=int(ts),
                message_type=mtype,
                message=_decode_field(msg_b64, "message", MAX_B64_FIELD),
                nat_access=nat,
                server_auth=auth,
                client_timeout=timeout,
                version=version,
            )
        except UsageError as exc:
            raise ValueError(str(exc)) from None


def _decode_field(text: str, what: str, max_len: int) -> str:
    if not 1 <= len(text) <= max_len:
        raise ValueError(f"{what} field length")
    try:
        raw = b64s_decode(text.encode("ascii"))
        return raw.decode("ascii")
    except (ValueError, UnicodeError):
        raise ValueError(f"{what} field is not valid base64 text") from None
