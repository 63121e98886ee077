"""The server's vocabulary: what flows between capture, pipeline, replay store and firewall.

Packets in; decisions out (a refusal with its reason, or one of the actions:
a grant, a command, a command cycle, a GnuPG decryption to run off the
packet path); the replay-store protocol. Every part of the server speaks
these words, so they live here, in a module that imports nothing of the
server: capture, the firewall backends, the replay stores and the processor
depend on this module, never on each other (import-linter keeps it so).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

from fwknop_core import InvalidPacket, MacMatch, MessageType, OpenedPacket, X25519Opened

__all__ = [
    "MAX_WORDS",
    "MUTED",
    "PROTO_NUMBERS",
    "Accepted",
    "Attempt",
    "Decision",
    "Deferred",
    "GpgJob",
    "GpgOutcome",
    "Grant",
    "IPAddress",
    "Muted",
    "NatError",
    "NatGrant",
    "Packet",
    "Reason",
    "Refused",
    "ReplayStore",
    "ReplayUnavailable",
    "RunAs",
    "RunCommand",
    "RunCycle",
    "Snat",
    "proto_name",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PROTO_NUMBERS: Final = {"tcp": 6, "udp": 17, "icmp": 1}  # an access list's protocols, by number
_PROTO_NAMES: Final = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}
MAX_WORDS: Final = 28  # fwknopd runs no longer command (its argv array: 30 slots, 2 its own)


def proto_name(number: int) -> str:
    """``udp`` for 17 and so on (for logs)."""
    return _PROTO_NAMES.get(number, str(number))


class Packet(NamedTuple):
    """What capture saw: the L4 payload and its addresses (a tuple: cheap to make per packet).

    ``screened``: the flood screen's verdict when capture already took it
    (``screen.py``), so the pipeline does not take it again; None when no
    screen looked at the packet.
    """

    payload: bytes
    src: IPAddress
    dst: IPAddress | None = None  # None in UDP server mode when unknown
    proto: int = 17
    sport: int = 0
    dport: int = 0
    screened: object = None


class Reason(enum.Enum):
    """Why a packet was not granted: ``(counter, our words, fwknopd's line)``.

    ``value[0]`` (``key``) names the counter; ``text`` is our verdict line's
    wording; ``fwknopd`` is the line fwknopd 2.6.10 logs for the same event
    (taken from the running binary), or None where it logs none or where the
    refusal is ours alone. Its fields: ``{src}``, ``{dst}``, ``{n}`` (the
    stanza), ``{detail}``, ``{proto}``/``{dport}`` (numbers), ``{enc}`` (fko's
    encryption type number). ``loglines.py`` writes both.
    """

    # first: no stanza "gets further" than a bug (the dispatcher's, never the pipeline's)
    INTERNAL = (
        "internal_error",
        "internal error while deciding it (a bug: please report it)",
        None,
    )
    TOO_SHORT = ("too_short", "packet shorter than 140 bytes", None)
    TOO_LONG = ("too_long", "packet of 1500 bytes or more", None)
    NOT_SPA = (
        "not_spa",
        "data is not an SPA message (characters outside base64)",
        "[{src}] preprocess_spa_data() returned error 4098: 'Data is not an SPA message' "
        "for incoming packet.",
    )
    PREFIX_STUFFING = (
        "prefix_stuffing",
        "data is not a valid SPA message format",
        "[{src}] preprocess_spa_data() returned error 4096: 'Data is not a valid SPA message "
        "format' for incoming packet.",
    )
    X25519_VERSION = ("x25519_version", "x25519 packet of a format version this server lacks", None)
    UNKNOWN_KEY_ID = ("unknown_key_id", "x25519 packet with a key id no stanza names", None)
    FORWARDED_FOR = ("forwarded_for", "X-Forwarded-For is not an IPv4 address", None)
    NO_STANZA = (
        "no_stanza",
        "no access stanza for this source address",
        "No access data found for source IP: {src}",
    )
    DESTINATION = (
        "destination",
        "destination does not match any stanza",
        "(stanza #{n}) SPA packet ({src} -> {dst}) filtered by SOURCE and/or DESTINATION criteria",
    )
    EXPIRED_STANZA = (
        "expired_stanza",
        "access stanza has expired",
        "[{src}] (stanza #{n}) Access stanza has expired",
    )
    NO_DECRYPTION = (
        "no_decryption",
        "no stanza can decrypt this kind of packet",
        "[{src}] (stanza #{n}) No stanza encryption mode match for encryption type: {enc}.",
    )
    HMAC_MISMATCH = (
        "hmac",
        "HMAC mismatch",
        "[{src}] (stanza #{n}) Error creating fko context: Args contain invalid data: "
        "FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL",
    )
    AEAD = ("aead", "x25519 packet failed authentication (wrong key or tampered)", None)
    GPG_BUSY = ("gpg_busy", "GnuPG decryption queue is full", None)
    DECRYPT_FAILED = (
        "decrypt",
        "decryption failed (wrong key or mode)",
        "[{src}] (stanza #{n}) Error creating fko context: Decryption failed or decrypted data "
        "is invalid",
    )
    MALFORMED = (
        "malformed",
        "decrypted data is invalid",
        "[{src}] (stanza #{n}) Error creating fko context: {detail}",  # fwknopd's fko error
    )
    REPLAY = (
        "replay",
        "replayed packet",
        "Replay detected from source IP: {src}, Destination proto/port: {proto}/{dport}",
    )
    REPLAY_UNAVAILABLE = (
        "replay_unavailable",
        "shared replay cache unreachable (REPLAY_CACHE_REQUIRED)",
        None,
    )
    GPG_SIGNATURE = ("gpg_signature", "GnuPG signature refused", None)
    STALE = (
        "stale",
        "SPA data time difference is too great",
        "[{src}] (stanza #{n}) SPA data time difference is too great ({detail}).",
    )
    SOURCE_REQUIRED = (
        "source_required",
        "0.0.0.0 allow IP while a source address is required",
        "[{src}] (stanza #{n}) Got 0.0.0.0 when valid source IP was required.",
    )
    USERNAME = (
        "username",
        "Username in SPA data",
        "[{src}] (stanza #{n}) Username in SPA data {detail}",
    )
    OS_NO_SYN = ("os_no_syn", "REQUIRE_OS: no TCP SYN was seen for this packet's connection", None)
    OS_MISMATCH = ("os_mismatch", "OS fingerprint does not meet REQUIRE_OS", None)
    NAT = (
        "nat",
        "NAT access requested but not enabled",
        "(stanza #{n}) SPA packet from {src} requested NAT access, but is not enabled/supported",
    )
    NAT_REFUSED = ("nat_refused", "NAT cannot be done for this request", None)
    COMMAND = (
        "command",
        "command messages are not allowed",
        "[{src}] (stanza #{n}) SPA Command messages are not allowed in the current configuration.",
    )
    COMMAND_REGEX = ("command_regex", "command does not match CMD_REGEX", None)
    COMMAND_WORDS = ("command_words", f"command is empty or has more than {MAX_WORDS} words", None)
    CYCLE = ("cycle", "a command cycle needs an access request (proto/port)", None)
    PORTS = (
        "ports",
        "a requested protocol/port is not allowed",
        "[{src}] (stanza #{n}) One or more requested protocol/ports was denied per access.conf.",
    )
    IPV6_ALLOW = ("ipv6_allow", "IPv6 grants are not supported by this firewall backend", None)

    def __init__(self, key: str, text: str, fwknopd: str | None) -> None:
        self.key = key
        self.text = text
        self.fwknopd = fwknopd


Attempt = tuple[int, Reason, str]  # a stanza that was tried: its number, why it refused, detail


@dataclass(frozen=True, slots=True)
class Refused:
    """A packet that gets nothing, why, and (when a stanza was tried) each stanza's reason."""

    reason: Reason
    detail: str = ""
    stanza: int | None = None
    attempts: tuple[Attempt, ...] = ()
    silent: bool = False  # fwknopd logs nothing for these (size): we log them at info level
    # what the packet held, when a stanza decrypted it (for -v -v's dump)
    opened: OpenedPacket | X25519Opened[Any] | None = field(default=None, repr=False, compare=False)


class Muted(enum.Enum):
    """The verdict on a packet whose refusal is past its log rate (``screen.py``).

    Such a packet is counted where it was seen (by capture, or by the screen
    itself) and dropped: never logged, never decided again.
    """

    MUTED = "muted"


MUTED: Final = Muted.MUTED


class NatError(Exception):
    """A NAT request that cannot be served (a host name that is not allowed or not found)."""


@dataclass(frozen=True, slots=True)
class Snat:
    """Source NAT for the forwarded traffic: to an address, or MASQUERADE (``to`` None)."""

    to: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class NatGrant:
    """What one NAT request opens, besides the client's source and the timeout."""

    local: bool  # local NAT: the server itself is the host (input, not forward)
    proto: str
    port: int  # the access string's port: where the client connects on the server
    host: str  # the internal host as given (an address, or a name to resolve)
    nat_port: int  # the internal port (0 with FORWARD_ALL's implied FORCE_NAT)
    forward_all: bool = False
    dnat: bool = True
    snat: Snat | None = None
    address: IPAddress | None = None  # ``host``, resolved (IPv6 only for an IPv6 client)

    @property
    def target(self) -> IPAddress:
        """The internal address; ``NatError`` if the host name has not been resolved."""
        if self.address is None:
            raise NatError(f"NAT host {self.host!r} has not been resolved")
        return self.address


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to open: for ``source``, these (proto, port) pairs, for ``timeout`` seconds."""

    source: IPAddress
    destination: IPAddress | None
    ports: tuple[tuple[str, int], ...]
    timeout: int
    expires: int  # epoch seconds
    stanza: int
    username: str
    message_type: MessageType
    nat: NatGrant | None = None  # a NAT request (or FORCE_NAT): forwarded or local NAT


@dataclass(frozen=True, slots=True)
class Accepted:
    """A packet that opens access (``grant``); ``test_only`` in ``--test`` mode."""

    grant: Grant
    opened: OpenedPacket | X25519Opened[Any] = field(repr=False)
    test_only: bool = False
    attempts: tuple[Attempt, ...] = ()  # the stanzas before it that refused, as fwknopd logs them


@dataclass(frozen=True, slots=True)
class RunAs:
    """Who a command runs as: set the group (and drop the others), then the user."""

    uid: int | None
    gid: int | None
    user: str | None = None
    group: str | None = None

    def describe(self) -> str:
        """fwknopd's ``user/group (UID=..,GID=..)`` wording."""
        return (
            f"{self.user or 'root'}/{self.group or self.user or 'root'} "
            f"(UID={self.uid if self.uid is not None else 0},"
            f"GID={self.gid if self.gid is not None else 0})"
        )


@dataclass(frozen=True, slots=True)
class RunCommand:
    """A command message to run: ``argv`` as ``run_as``."""

    command: str  # as the client sent it
    argv: tuple[str, ...]
    run_as: RunAs | None
    source: IPAddress  # the allow IP (or the packet's source for 0.0.0.0)
    packet_src: IPAddress
    stanza: int
    username: str
    test_only: bool = False  # --test: logged, not run
    attempts: tuple[Attempt, ...] = ()  # the stanzas before it that refused


@dataclass(frozen=True, slots=True)
class RunCycle:
    """A command cycle to start: its open command now, its close command after a while."""

    open_text: str  # after substitution
    close_text: str | None
    close_after: int  # seconds after the packet
    source: IPAddress
    packet_src: IPAddress
    stanza: int
    username: str
    attempts: tuple[Attempt, ...] = ()  # the stanzas before it that refused


@dataclass(frozen=True, slots=True, repr=False)
class GpgJob:
    """A GnuPG decryption the pipeline needs: ``data`` with the keyring of one stanza.

    ``verified`` is the core's proof that the HMAC already matched (so the
    decryption does not check it again), or None for a stanza without one.
    """

    data: bytes
    home_dir: str
    exe: str
    passphrase: str | None
    verified: MacMatch | None = None
    decrypt_id: str | None = None  # GPG_DECRYPT_ID: the only key the packet may be opened with

    def __repr__(self) -> str:
        return f"GpgJob({len(self.data)} bytes, home {self.home_dir})"


GpgOutcome = OpenedPacket | InvalidPacket


@dataclass(frozen=True, slots=True)
class Deferred:
    """A decision waiting for ``job`` (run off the packet path): ``resume`` its outcome, once."""

    job: GpgJob
    packet: Packet
    resume: Callable[[GpgOutcome], Decision] = field(repr=False)


Decision = Accepted | Refused | RunCommand | RunCycle | Deferred | Muted


class ReplayUnavailable(Exception):  # noqa: N818 - a state, not a programming error
    """A shared replay store that cannot answer, and may not be stood in for (it says why)."""


class ReplayStore(Protocol):
    """Where digests of packets already seen are kept (``replay/``: SQLite by default)."""

    def seen(self, digest: str) -> bool:
        """Whether ``digest`` is known (``--test`` mode looks, and records nothing)."""
        ...

    def add(self, digest: str, packet: Packet, expires: float) -> bool:
        """Record ``digest`` until ``expires`` (epoch seconds), in one step with the check.

        True if it was new; False if it was known already (a replay). A
        store shared between daemons makes this one atomic operation, and
        raises ``ReplayUnavailable`` when it cannot answer and must not
        answer from this host alone (``REPLAY_CACHE_REQUIRED``).
        """
        ...

    def prune(self, now: float) -> int:
        """Forget entries that can no longer be replayed; how many went."""
        ...

    def __len__(self) -> int:
        """How many digests the store holds."""
        ...

    def close(self) -> None:
        """Write out what is pending and let go of files and connections."""
        ...
