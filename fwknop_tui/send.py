"""Knocking: resolve, build, send, verify; every transport fwknop's client has but tcpraw.

``knock(profile, keys)`` is the one call the CLI and the TUI make. It runs
the stages in order and reports each (name, success, seconds, detail) to an
optional callback as it finishes, so a TUI worker thread can show progress;
``cancel`` (a ``threading.Event``) stops a verify loop early. It raises a
``ClientError`` for anything that stops the knock before the packet is out
and returns a ``KnockResult`` otherwise, with ``verify.ok`` False when the
probed port never answered (the caller decides whether that is an error).

Transports (spa-protocol.md §7.2): ``udp`` one datagram; ``tcp`` connect,
send, close; ``http`` the GET request fwknopd extracts (directly or through
a proxy); ``icmp`` and ``udpraw`` hand-built IPv4 packets on a raw socket
(root or CAP_NET_RAW), which is what allows a spoofed source address
(``spoof_source``). Raw transports are IPv4 only, as in fwknop 2.6; UDP,
TCP and HTTP reach IPv6 destinations too. The allow IP inside the message
is IPv4 whatever the transport, because the protocol says so.

Every loop is bounded: connects and probes have timeouts, and the verify
loop stops after ``verify_retries`` attempts.
"""

from __future__ import annotations

import enum
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fwknop_core import (
    NatAccess,
    SpaMessage,
    UsageError,
    build_packet,
    validate_allow_ip,
    validate_ipv4,
    validate_username,
)

from ._log import get_logger
from .errors import ClientError, ClientUsageError, ResolveError, SendError
from .wallet.keys import ProfileKeys
from .wallet.profiles import IPV6_NAT_HOST, Profile
from .wallet.validate import AllowIp, Transport, split_hostport

__all__ = [
    "KnockResult",
    "Stage",
    "StageReport",
    "VerifyPlan",
    "VerifyResult",
    "build_icmp_packet",
    "build_udp_packet",
    "fetch_external_ip",
    "knock",
    "probe_tcp",
    "resolve_host",
    "tcp_target",
]

if TYPE_CHECKING:
    import threading

log = get_logger(__name__)

CONNECT_TIMEOUT = 5.0
RESOLVE_TIMEOUT = 10.0
DEFAULT_PROXY_PORT = 8080
RAW_TTL = 255
KeySource = Callable[[Profile], ProfileKeys]


class Stage(enum.StrEnum):
    """The steps of a knock, in order."""

    KEYS = "keys"
    RESOLVE = "resolve"
    BUILD = "build"
    SEND = "send"
    VERIFY = "verify"


class _Record:
    """A small result record: its fields are its ``__slots__``; it is built once, never changed.

    Plain classes, not dataclasses: the few records of a knock are made on
    every ``fwknop send``, and a dataclass costs its generated methods'
    compilation at import (measured in tests/bench/bench_send.py).
    """

    __slots__: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields and their values."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({fields})"


class StageReport(_Record):
    """One finished stage: whether it worked, how long it took, a short detail."""

    __slots__ = ("detail", "ok", "seconds", "stage")

    def __init__(self, stage: Stage, ok: bool, seconds: float, detail: str = "") -> None:
        self.stage = stage
        self.ok = ok
        self.seconds = seconds
        self.detail = detail


class VerifyResult(_Record):
    """The TCP probe after a knock; ``open_before``: it answered before the knock (no proof)."""

    __slots__ = ("attempts", "cancelled", "host", "ok", "open_before", "port", "seconds")

    def __init__(  # noqa: PLR0917 - a record of the probe
        self,
        host: str,
        port: int,
        ok: bool,
        attempts: int,
        seconds: float,
        cancelled: bool = False,
        open_before: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.ok = ok
        self.attempts = attempts
        self.seconds = seconds
        self.cancelled = cancelled
        self.open_before = open_before


class KnockResult(_Record):
    """What a knock did (no key material; the packet is what went on the wire)."""

    __slots__ = (
        "address",
        "allow_ip",
        "host",
        "message_type",
        "packet",
        "port",
        "profile",
        "request",
        "sent",
        "source",
        "stages",
        "transport",
        "verify",
    )

    def __init__(
        self,
        *,
        profile: str,
        host: str,
        address: str,
        port: int,
        transport: str,
        allow_ip: str,
        message_type: str,
        request: str,
        packet: str,
        sent: bool,
        source: str | None = None,
        verify: VerifyResult | None = None,
        stages: tuple[StageReport, ...] = (),
    ) -> None:
        self.profile = profile
        self.host = host
        self.address = address
        self.port = port
        self.transport = transport
        self.allow_ip = allow_ip
        self.message_type = message_type
        self.request = request
        self.packet = packet
        self.sent = sent
        self.source = source
        self.verify = verify
        self.stages = stages

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = self.as_dict()
        data["verify"] = self.verify.as_dict() if self.verify is not None else None
        data["stages"] = [
            {"stage": s.stage.value, "ok": s.ok, "seconds": round(s.seconds, 6), "detail": s.detail}
            for s in self.stages
        ]
        data["packet_length"] = len(self.packet)
        return data


class _Stages:
    """Times stages and reports them."""

    def __init__(self, on_stage: Callable[[StageReport], None] | None) -> None:
        self.on_stage = on_stage
        self.done: list[StageReport] = []

    def run(self, stage: Stage, func: Callable[[], Any], detail: Callable[[Any], str]) -> Any:
        start = time.perf_counter()
        try:
            value = func()
        except BaseException as exc:
            self._report(StageReport(stage, False, time.perf_counter() - start, _short(exc)))
            raise
        self._report(StageReport(stage, True, time.perf_counter() - start, detail(value)))
        return value

    def _report(self, report: StageReport) -> None:
        self.done.append(report)
        log.info(
            "%s: %s in %.1f ms (%s)",
            report.stage,
            "ok" if report.ok else "failed",
            report.seconds * 1000,
            report.detail,
        )
        if self.on_stage is not None:
            self.on_stage(report)


def _short(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ClientError) else type(exc).__name__


def _randbelow(n: int) -> int:
    """A uniform random integer in 0..n-1 from the OS (the ``secrets`` module costs an import)."""
    limit = (1 << 32) - (1 << 32) % n
    while True:
        value = int.from_bytes(os.urandom(4), "big")
        if value < limit:
            return value % n


# -- resolution ---------------------------------------------------------------


def resolve_host(
    host: str, port: int, family: str = "any", *, stream: bool = False
) -> tuple[int, str]:
    """(address family, address) of ``host``; ``family`` is any, ipv4 or ipv6."""
    fam = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    kind = socket.SOCK_STREAM if stream else socket.SOCK_DGRAM
    try:
        # an ASCII name as bytes skips the str -> IDNA encoding (and its import); others need it
        infos = socket.getaddrinfo(
            host.encode("ascii") if host.isascii() else host, port, fam, kind
        )
    except socket.gaierror as exc:
        want = "" if family == "any" else f" ({family})"
        raise ResolveError(f"cannot resolve host {host!r}{want}: {exc.strerror}") from None
    except UnicodeError:
        raise ResolveError(f"cannot resolve host {host!r}: not a valid name") from None
    if not infos:
        raise ResolveError(f"cannot resolve host {host!r}: no address")
    af, _kind, _proto, _canon, addr = infos[0]
    return af, str(addr[0])


def fetch_external_ip(
    url: str, *, user_agent: str, timeout: float = RESOLVE_TIMEOUT, ipv6: bool = False
) -> str:
    """Ask an HTTPS service for this machine's public address (``-R``): IPv4, or IPv6 if allowed."""
    import ssl  # noqa: PLC0415 - only -R pays for TLS
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    if not url.lower().startswith("https://"):
        raise ClientUsageError(f"resolve_url must be https://, not {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept": "*/*"})  # noqa: S310
    try:
        opened = urllib.request.urlopen(  # noqa: S310 - https only, checked above
            request, timeout=timeout, context=ssl.create_default_context()
        )
        with opened as resp:
            body = resp.read(256)
    except urllib.error.HTTPError as exc:
        raise ResolveError(f"external address lookup at {url} failed: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise ResolveError(f"external address lookup at {url} failed: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise ResolveError(f"external address lookup at {url} failed: {exc}") from None
    text = body.decode("ascii", "replace").strip()
    if ":" in text:
        try:
            return validate_allow_ip(text, "external address", ipv6=ipv6)
        except UsageError as exc:
            if ipv6:
                raise ResolveError(f"{url} did not answer with an IP address ({exc})") from None
            raise ResolveError(
                f"{url} says this machine is {text}, an IPv6 address, and the C fwknopd 2.6 "
                'only takes IPv4 (use a resolver that answers over IPv4, allow_ip = "source", '
                'or server_type = "fwknop-tui" if the server runs ours)'
            ) from None
    try:
        return validate_ipv4(text, "external address")
    except UsageError:
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise ResolveError(f"{url} did not answer with an IPv4 address (got {shown!r})") from None


def _allow_ip(profile: Profile, ask: Callable[[], str] | None) -> str:
    mode = profile.allow_ip
    if mode == AllowIp.SOURCE:
        return "0.0.0.0"  # noqa: S104 - the protocol's "use the packet source"
    if mode == AllowIp.RESOLVE:
        return fetch_external_ip(
            profile.resolve_url,
            user_agent=profile.user_agent,
            ipv6=profile.takes_ipv6_allow_ip,
        )
    if mode == AllowIp.ASK:
        if ask is None:
            raise ClientUsageError(
                f'profile {profile.name!r} asks for the allow IP (allow_ip = "ask"): run it '
                "from a terminal or give -a ADDRESS"
            )
        from .wallet.validate import FieldError  # noqa: PLC0415

        try:  # checked as the profile's own allow_ip is, cross-field rules too
            asked = profile.with_changes({"allow_ip": ask().strip()})
        except FieldError as exc:
            raise ClientUsageError(exc.message) from None
        if asked.allow_ip in ("source", "resolve", "ask"):
            return _allow_ip(asked, None)
        return asked.allow_ip
    return mode


# -- building -----------------------------------------------------------------


def _username(profile: Profile) -> str:
    if profile.username:
        return profile.username
    # the C client's order; the environment first spares ``import getpass`` (and termios)
    name = next((os.environ[v] for v in ("SPOOF_USER", "LOGNAME", "USER") if os.environ.get(v)), "")
    if not name:
        import getpass  # noqa: PLC0415

        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "NO_USER"
    try:
        return validate_username(name[:48])
    except UsageError:
        raise ClientUsageError(
            f"your login name {name!r} cannot go in an SPA packet: set username in the profile"
        ) from None


def _message(profile: Profile, allow_ip: str, now: float) -> SpaMessage:
    user = _username(profile)
    ipv6 = profile.takes_ipv6_allow_ip
    if profile.server_command:
        return SpaMessage.command_request(
            allow_ip, profile.server_command, username=user, now=now, allow_ipv6=ipv6
        )
    access = list(profile.access)
    nat: NatAccess | None = None
    if profile.nat_access or profile.nat_local:
        proto, _, port_text = access[0].partition("/")
        inner_port = int(port_text)
        if profile.nat_local:
            nat_host = profile.host
        else:
            nat_host, nat_port = split_hostport(profile.nat_access)
            inner_port = nat_port or inner_port
        if ":" in nat_host and not profile.takes_ipv6_allow_ip:  # nat_local, an IPv6 server
            raise ClientUsageError(f"profile {profile.name!r}: {IPV6_NAT_HOST}")
        try:
            nat = NatAccess(nat_host, inner_port)
        except UsageError as exc:
            raise ClientUsageError(f"profile {profile.name!r}: {exc}") from None
        external = profile.nat_port or (
            _randbelow(55535) + 10000 if profile.nat_random_port else int(port_text)
        )
        access = [f"{proto}/{external}"]
    return SpaMessage.access_request(
        allow_ip,
        access,
        username=user,
        client_timeout=profile.client_timeout,
        nat=nat,
        local_nat=profile.nat_local,
        now=now,
        allow_ipv6=ipv6,
    )


def _build(profile: Profile, keys: ProfileKeys, message: SpaMessage) -> str:
    try:
        if profile.uses_x25519:
            if keys.x25519 is None:
                raise ClientUsageError(f"profile {profile.name!r}: no x25519 key")
            from fwknop_core import (  # noqa: PLC0415 - loads on first use
                X25519PublicKey,
                X25519SharedKey,
                build_x25519_packet,
            )

            server = X25519PublicKey.from_text(profile.server_public_key)
            return build_x25519_packet(message, X25519SharedKey.for_client(keys.x25519, server))
        if profile.uses_gpg:
            from fwknop_core.gpg import GnupgBackend, GpgEncryption  # noqa: PLC0415

            home = os.path.expanduser(profile.gpg_home) if profile.gpg_home else None
            if home is not None and not os.path.isdir(home):  # python-gnupg: a ValueError
                raise ClientUsageError(
                    f"profile {profile.name!r}: gpg_home {home} is not a directory"
                )
            enc = GpgEncryption(
                GnupgBackend(home, profile.gpg_exe),
                profile.gpg_recipient,
                profile.gpg_signer or None,
                keys.gpg_signing_pw,
            )
            return build_packet(message, enc, hmac_key=keys.hmac, digest_type=profile.digest_type)
        if keys.rijndael is None:
            raise ClientUsageError(f"profile {profile.name!r}: no Rijndael key")
        return build_packet(
            message, keys.rijndael, hmac_key=keys.hmac, digest_type=profile.digest_type
        )
    except UsageError as exc:
        raise ClientUsageError(f"profile {profile.name!r}: {exc}") from None
    except OSError as exc:
        raise SendError(f"profile {profile.name!r}: cannot run GnuPG: {exc.strerror}") from None


# -- raw packets (pure) ----------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4_header(src: str, dst: str, proto: int, payload_len: int, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + payload_len,
        ident,
        0x4000,  # don't fragment
        RAW_TTL,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:]


def build_udp_packet(
    src: str, dst: str, sport: int, dport: int, payload: bytes, *, ident: int = 0
) -> bytes:
    """An IPv4+UDP packet with correct checksums (for ``udpraw``)."""
    length = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return _ipv4_header(src, dst, socket.IPPROTO_UDP, length, ident) + udp


def build_icmp_packet(
    src: str, dst: str, icmp_type: int, icmp_code: int, payload: bytes, *, ident: int = 0
) -> bytes:
    """An IPv4+ICMP packet carrying ``payload`` after the 8-byte ICMP header."""
    body = struct.pack("!BBHHH", icmp_type, icmp_code, 0, ident, 1) + payload
    body = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
    return _ipv4_header(src, dst, socket.IPPROTO_ICMP, len(body), ident) + body


# -- sending --------------------------------------------------------------------


def _local_address(dst: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((dst, port or 9))
        return str(probe.getsockname()[0])


def _send_raw(packet: bytes, dst: str) -> None:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        raise SendError(
            "raw transports (icmp, udpraw) need root or CAP_NET_RAW; use udp, tcp or http"
        ) from None
    with sock:
        sock.sendto(packet, (dst, 0))


def _bind_any(af: int) -> str:
    return "::" if af == socket.AF_INET6 else "0.0.0.0"  # noqa: S104 - a client's source


def _send(profile: Profile, wire: str, af: int, address: str, port: int) -> str | None:
    """Put the packet on the wire; returns the source used when it is notable."""
    data = wire.encode("ascii")
    transport = profile.transport
    try:
        if transport is Transport.UDP:
            with socket.socket(af, socket.SOCK_DGRAM) as sock:
                if profile.source_port:
                    sock.bind((_bind_any(af), profile.source_port))
                sock.sendto(data, (address, port))
            return None
        if transport in (Transport.TCP, Transport.HTTP):
            payload = data
            target = (address, port)
            if transport is Transport.HTTP:
                from fwknop_core import encode_http_request  # noqa: PLC0415 - loads on first use

                host = f"[{profile.host}]" if ":" in profile.host else profile.host
                payload = encode_http_request(
                    wire,
                    host=host,
                    user_agent=profile.user_agent,
                    via_proxy=bool(profile.http_proxy),
                )
            with socket.socket(af, socket.SOCK_STREAM) as sock:
                sock.settimeout(CONNECT_TIMEOUT)
                if profile.source_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((_bind_any(af), profile.source_port))
                sock.connect(target)
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            return None
        # raw transports: IPv4 only
        src = profile.spoof_source or _local_address(address, port)
        ident = _randbelow(0xFFFF) + 1
        if transport is Transport.UDPRAW:
            sport = profile.source_port or _randbelow(55535) + 10000
            packet = build_udp_packet(src, address, sport, port, data, ident=ident)
        else:
            packet = build_icmp_packet(
                src, address, profile.icmp_type, profile.icmp_code, data, ident=ident
            )
        _send_raw(packet, address)
        return src
    except ClientError:
        raise
    except TimeoutError:
        raise SendError(
            f"{transport.value} to {address} port {port}: no answer (timed out)"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SendError(f"{transport.value} to {address} port {port} failed: {reason}") from None


# -- verifying -------------------------------------------------------------------


def probe_tcp(
    host: str,
    port: int,
    *,
    retries: int,
    interval: float,
    family: str = "any",
    cancel: threading.Event | None = None,
) -> VerifyResult:
    """Connect to ``host:port`` until it answers or ``retries`` x ``interval`` seconds pass.

    Attempts start 10 ms apart and back off to ``interval`` (``probe.race_connect``).
    """
    from .probe import race_connect  # noqa: PLC0415 - only a verify pays for it

    af, address = resolve_host(host, port, family, stream=True)
    race = race_connect(
        af, address, port, budget=retries * interval, max_gap=interval, cancel=cancel
    )
    if race.sock is not None:
        race.sock.close()
    return VerifyResult(
        host, port, race.sock is not None, race.attempts, race.seconds, race.cancelled
    )


def tcp_target(profile: Profile) -> tuple[str, int]:
    """Where a verify (or ``fwknop connect``) connects: ``verify``, else the first TCP port."""
    if profile.verify:
        host, port = split_hostport(profile.verify)
        return host or profile.host, port or 0
    for item in profile.access:
        proto, _, port_text = item.partition("/")
        if proto == "tcp":
            external = profile.nat_port or int(port_text)
            return profile.host, external
    raise ClientUsageError(
        f'profile {profile.name!r} has no TCP port to verify: set verify = "host:port"'
    )


class VerifyPlan:
    """Where a knock's verify connects, resolved before the knock, and the probe sent ahead.

    ``probe_ahead`` starts one connection attempt just before the packet
    goes out (``probe.PreProbe``): if it is answered at once, the port was
    open before the knock and the verify proves nothing (``open_before``).
    """

    __slots__ = ("address", "af", "host", "port", "pre")

    def __init__(self, host: str, port: int, af: int, address: str) -> None:
        self.host = host
        self.port = port
        self.af = af
        self.address = address
        self.pre: Any = None

    @classmethod
    def of(cls, profile: Profile, target: tuple[str, int] | None = None) -> VerifyPlan:
        """Resolve ``target`` (default: the profile's ``tcp_target``)."""
        host, port = target or tcp_target(profile)
        af, address = resolve_host(host, port, profile.address_family, stream=True)
        return cls(host, port, af, address)

    def probe_ahead(self) -> None:
        """Start the probe whose SYN leaves before the knock."""
        from .probe import PreProbe  # noqa: PLC0415 - only a verify pays for it

        self.pre = PreProbe(self.af, self.address, self.port)

    def close(self) -> None:
        """Drop the probe if it is still pending."""
        if self.pre is not None:
            self.pre.close()


def _verify_stage(
    stages: _Stages,
    profile: Profile,
    cancel: threading.Event | None,
    plan: VerifyPlan | None = None,
    on_connect: Callable[[socket.socket], None] | None = None,
) -> VerifyResult:
    """The verify stage of a knock (SPA or sequence): connect to the target until it answers.

    ``plan`` is resolved (and its probe sent) before the knock; without one
    the target is resolved now and nothing can say whether it was open before.
    """
    from .probe import race_connect  # noqa: PLC0415 - only a verify pays for it

    plan = plan or VerifyPlan.of(profile)

    def run() -> VerifyResult:
        race = race_connect(
            plan.af,
            plan.address,
            plan.port,
            budget=profile.verify_retries * profile.verify_interval,
            max_gap=profile.verify_interval,
            pre=plan.pre,
            cancel=cancel,
        )
        if race.sock is not None:
            if on_connect is not None:
                on_connect(race.sock)
            else:
                race.sock.close()
        return VerifyResult(
            plan.host,
            plan.port,
            race.sock is not None,
            race.attempts,
            race.seconds,
            race.cancelled,
            race.open_before,
        )

    try:
        result: VerifyResult = stages.run(Stage.VERIFY, run, _verify_detail)
    finally:
        plan.close()
    return result


# -- the knock ---------------------------------------------------------------------


def knock(
    profile: Profile,
    keys: KeySource | ProfileKeys,
    *,
    dry_run: bool = False,
    verify: bool | None = None,
    verify_target: tuple[str, int] | None = None,
    on_connect: Callable[[socket.socket], None] | None = None,
    ask_allow_ip: Callable[[], str] | None = None,
    on_stage: Callable[[StageReport], None] | None = None,
    cancel: threading.Event | None = None,
    now: float | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> KnockResult:
    """Knock with ``profile``: keys -> resolve -> build -> send (-> verify).

    ``keys`` is the keys themselves or a callable that loads them (so the
    keyring read is timed as its own stage). ``verify`` None follows the
    profile (on when it names a ``verify`` target); ``verify_target`` (host,
    port) verifies there instead of the profile's target. With
    ``on_connect``, the verified connection is handed to it (it owns the
    socket then) instead of being closed: ``fwknop connect`` relays over it.
    ``on_progress(sent, total)`` follows a knock sequence knock by knock (an
    SPA knock is one packet: its send stage says all there is).
    """
    if profile.knocks_sequence:  # a fwknop 1.x knock sequence, not an SPA packet
        from .sequence import knock_sequence  # noqa: PLC0415

        return knock_sequence(
            profile, keys, dry_run=dry_run, verify=verify, ask_allow_ip=ask_allow_ip,
            on_stage=on_stage, cancel=cancel, verify_target=verify_target, on_connect=on_connect,
            on_progress=on_progress,
        )  # fmt: skip
    stages = _Stages(on_stage)
    got: ProfileKeys = (
        keys
        if isinstance(keys, ProfileKeys)
        else stages.run(
            Stage.KEYS, lambda: keys(profile), lambda k: ", ".join(sorted(set(k.sources.values())))
        )
    )
    family = "ipv4" if profile.transport.raw else profile.address_family
    port = _randbelow(55535) + 10000 if profile.random_port else profile.port
    want_verify = verify_target is not None or (bool(profile.verify) if verify is None else verify)
    want_verify = want_verify and not dry_run

    def resolve() -> tuple[int, str, str, VerifyPlan | None]:
        if profile.http_proxy:
            proxy_host, proxy_port = split_hostport(profile.http_proxy)
            af, addr = resolve_host(
                proxy_host, proxy_port or DEFAULT_PROXY_PORT, family, stream=True
            )
        else:
            af, addr = resolve_host(
                profile.host,
                port,
                family,
                stream=profile.transport in (Transport.TCP, Transport.HTTP),
            )
        # before the knock: a verify target that cannot be resolved stops it
        target = VerifyPlan.of(profile, verify_target) if want_verify else None
        return af, addr, _allow_ip(profile, ask_allow_ip), target

    af, address, allow_ip, target = stages.run(
        Stage.RESOLVE, resolve, lambda r: f"{profile.host} is {r[1]}; allow {r[2]}"
    )
    dest_port = port
    if profile.http_proxy:
        dest_port = split_hostport(profile.http_proxy)[1] or DEFAULT_PROXY_PORT
    stamp = (time.time() if now is None else now) + profile.time_offset

    def build() -> tuple[SpaMessage, str]:
        message = _message(profile, allow_ip, stamp)
        return message, _build(profile, got, message)

    message, wire = stages.run(
        Stage.BUILD, build, lambda r: f"{r[0].message_type.label}, {len(r[1])} characters"
    )
    source = None
    result_verify = None
    if not dry_run:
        try:
            if target is not None:
                target.probe_ahead()  # its SYN leaves before the knock
            source = stages.run(
                Stage.SEND,
                lambda: _send(profile, wire, af, address, dest_port),
                lambda _src: f"{profile.transport.value} to {address} port {dest_port}",
            )
            if target is not None:
                result_verify = _verify_stage(stages, profile, cancel, target, on_connect)
        finally:
            if target is not None:
                target.close()
    request = (
        message.command if message.command is not None else ",".join(str(a) for a in message.access)
    )
    return KnockResult(
        profile=profile.name,
        host=profile.host,
        address=address,
        port=dest_port,
        transport=profile.transport.value,
        allow_ip=allow_ip,
        message_type=message.message_type.label,
        request=request,
        packet=wire,
        sent=not dry_run,
        source=source,
        verify=result_verify,
        stages=tuple(stages.done),
    )


def _verify_detail(v: VerifyResult) -> str:
    if v.open_before:
        return f"{v.host}:{v.port} was already open before the knock: this proves nothing"
    if v.ok:
        return f"{v.host}:{v.port} open {v.seconds * 1000:.0f} ms after the knock"
    return f"{v.host}:{v.port} closed after {v.attempts} attempt(s)"
