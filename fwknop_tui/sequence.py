"""fwknop 1.x knock sequences from the client: ``mode = "knock"`` profiles.

``send.knock`` hands such profiles to :func:`knock_sequence`, which runs the
same stages as an SPA knock (keys, resolve, build, send, verify) and returns
the same ``KnockResult``, so the CLI (``fwknop knock``, ``fwknop send``) and
the TUI need nothing else. The ``packet`` of the result is the knock list
(``tcp/61083 tcp/61097 ...``).

An *encrypted* sequence (no ``knock_sequence``) is built by
:func:`fwknop_core.build_knock_sequence` from the profile's one
``proto/port``, the allow IP (0.0.0.0 for ``allow_ip = "source"``) and the
user name (the profile's ``username``, else the login name; 1.x always sent
the login name and cut it to 23 bytes, as we do), with the 1.x ``KEY``
kept as the profile's Rijndael key (``key_format = "passphrase"``). A
*shared* sequence is the profile's steps as they are.

On the wire, as the 1.x client (legacy-knock.md §1.4, §3.1): a TCP knock is
one SYN from a non-blocking connect that is dropped at once (so the kernel
never retransmits it: a retransmitted SYN would be a second knock to a 1.x
server); a UDP knock is one datagram holding ``0``; an icmp step is one echo
request (an unprivileged ICMP socket, else a raw one as root).
``--rotate-proto`` sends the odd knocks of an encrypted sequence as UDP.
Knocks are ``knock_delay`` seconds apart (1.x ``--time-delay``, default 1).
The loop is bounded: at most 48 knocks (or the profile's steps, at most 64),
each delay at most 60 s, and ``cancel`` stops it between knocks.
"""

from __future__ import annotations

import getpass
import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fwknop_core import (
    KNOCK_PROTOCOLS,
    KnockKey,
    KnockRequest,
    KnockStep,
    UsageError,
    build_knock_sequence,
    parse_shared_sequence,
)

from .errors import ClientUsageError, SendError
from .send import (
    KnockResult,
    Stage,
    StageReport,
    VerifyPlan,
    _allow_ip,
    _send_raw,
    _Stages,
    _verify_stage,
    build_icmp_packet,
    resolve_host,
)
from .wallet.keys import ProfileKeys
from .wallet.profiles import Profile

__all__ = ["KnockPlan", "knock_sequence", "plan_sequence", "send_knocks"]

if TYPE_CHECKING:
    import threading

_TCP, _UDP, _ICMP = KNOCK_PROTOCOLS["tcp"], KNOCK_PROTOCOLS["udp"], KNOCK_PROTOCOLS["icmp"]
UDP_PAYLOAD = b"0"  # what the 1.x client puts in a UDP knock
KnockPlan = tuple[KnockStep, ...]


def _login_name() -> bytes:
    try:
        return getpass.getuser().encode("utf-8", "replace")
    except (KeyError, OSError):
        return b""


def plan_sequence(
    profile: Profile, keys: ProfileKeys, allow_ip: str, *, salt: bytes | None = None
) -> tuple[KnockPlan, str]:
    """The knocks to send, in order, and what they ask for (pure but for the salt)."""
    if profile.knock_sequence:
        steps = parse_shared_sequence(profile.knock_sequence)
        return steps, ", ".join(map(str, steps))
    proto_name, _, port_text = profile.access[0].partition("/")
    proto = KNOCK_PROTOCOLS[proto_name]
    port = 0 if proto == _ICMP else int(port_text)
    if keys.rijndael is None:
        raise ClientUsageError(f"profile {profile.name!r}: no knock key (the 1.x KEY)")
    user = profile.username.encode() if profile.username else _login_name()
    try:
        request = KnockRequest(allow_ip, proto, port, user)
        ports = build_knock_sequence(
            request, KnockKey(keys.rijndael.secret), offset=profile.knock_offset, salt=salt
        )
    except UsageError as exc:
        raise ClientUsageError(f"profile {profile.name!r}: {exc}") from None
    rotate = profile.knock_rotate_proto
    plan = tuple(KnockStep(_UDP if rotate and i % 2 else _TCP, p) for i, p in enumerate(ports))
    return plan, request.access


def _echo_request(ident: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    total = sum(struct.unpack("!4H", body))
    total = (total & 0xFFFF) + (total >> 16)
    return body[:2] + struct.pack("!H", ~total & 0xFFFF) + body[4:]


def _send_one(step: KnockStep, af: int, address: str) -> None:
    if step.proto == _TCP:
        with socket.socket(af, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            # the SYN leaves inside connect(); closing at once means no retransmission
            sock.connect_ex((address, step.port or 0))
        return
    if step.proto == _UDP:
        with socket.socket(af, socket.SOCK_DGRAM) as sock:
            sock.sendto(UDP_PAYLOAD, (address, step.port or 0))
        return
    v6 = af == socket.AF_INET6
    kind = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    echo = bytes([128]) + _echo_request(0)[1:] if v6 else _echo_request(0)
    try:
        with socket.socket(af, socket.SOCK_DGRAM, kind) as sock:
            sock.sendto(echo, (address, 0))
    except PermissionError:
        if v6:
            raise
        src = _local_source(address)
        _send_raw(build_icmp_packet(src, address, 8, 0, b"", ident=1), address)


def _local_source(address: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, 9))
        return str(probe.getsockname()[0])


def send_knocks(
    plan: Sequence[KnockStep],
    af: int,
    address: str,
    *,
    delay: float,
    cancel: threading.Event | None = None,
    on_knock: Callable[[int, int], object] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send the knocks ``delay`` seconds apart; how many went out (fewer when cancelled)."""
    sent = 0
    for index, step in enumerate(plan):
        if index and delay > 0:
            if cancel is not None:
                if cancel.wait(delay):
                    break
            else:
                sleep(delay)
        elif cancel is not None and cancel.is_set():
            break
        try:
            _send_one(step, af, address)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SendError(f"knock {index + 1} ({step}) to {address} failed: {reason}") from None
        sent += 1
        if on_knock is not None:
            on_knock(sent, len(plan))
    return sent


def knock_sequence(
    profile: Profile,
    keys: Callable[[Profile], ProfileKeys] | ProfileKeys,
    *,
    dry_run: bool = False,
    verify: bool | None = None,
    ask_allow_ip: Callable[[], str] | None = None,
    on_stage: Callable[[StageReport], None] | None = None,
    cancel: threading.Event | None = None,
    salt: bytes | None = None,
    verify_target: tuple[str, int] | None = None,
    on_connect: Callable[[socket.socket], None] | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> KnockResult:
    """Knock with a ``mode = "knock"`` profile: keys -> resolve -> build -> send (-> verify).

    ``verify_target`` and ``on_connect`` are ``send.knock``'s (``fwknop connect``);
    ``on_progress(sent, total)`` is called before the first knock (0 sent) and after each.
    """
    stages = _Stages(on_stage)
    got: ProfileKeys = (
        keys
        if isinstance(keys, ProfileKeys)
        else stages.run(
            Stage.KEYS,
            lambda: keys(profile),
            lambda k: ", ".join(sorted(set(k.sources.values()))) or "none needed",
        )
    )

    def resolve() -> tuple[int, str, str]:
        af, addr = resolve_host(profile.host, 0, profile.address_family)
        allow = "0.0.0.0" if profile.knock_sequence else _allow_ip(profile, ask_allow_ip)  # noqa: S104
        try:
            ipaddress.IPv4Address(allow)
        except ValueError:
            raise ClientUsageError(
                f"a knock sequence carries an IPv4 allow IP, not {allow}"
            ) from None
        return af, addr, allow

    af, address, allow_ip = stages.run(
        Stage.RESOLVE, resolve, lambda r: f"{profile.host} is {r[1]}; allow {r[2]}"
    )
    kind = "shared sequence" if profile.knock_sequence else "encrypted sequence"
    plan, request = stages.run(
        Stage.BUILD,
        lambda: plan_sequence(profile, got, allow_ip, salt=salt),
        lambda r: f"{kind} of {len(r[0])} knocks",
    )
    result_verify = None
    want_verify = verify_target is not None or (bool(profile.verify) if verify is None else verify)
    check = VerifyPlan.of(profile, verify_target) if want_verify and not dry_run else None
    try:
        if not dry_run:
            if check is not None:
                check.probe_ahead()  # ahead of the first knock: was the port open before?
            if on_progress is not None:
                on_progress(0, len(plan))
            stages.run(
                Stage.SEND,
                lambda: send_knocks(
                    plan,
                    af,
                    address,
                    delay=profile.knock_delay,
                    cancel=cancel,
                    on_knock=on_progress,
                ),
                lambda n: (
                    f"{n} of {len(plan)} knocks to {address}, {profile.knock_delay:g} s apart"
                ),
            )
        if check is not None:
            result_verify = _verify_stage(stages, profile, cancel, check, on_connect)
    finally:
        if check is not None:
            check.close()
    protos = sorted({s.proto_name for s in plan})
    return KnockResult(
        profile=profile.name,
        host=profile.host,
        address=address,
        port=plan[0].port or 0,
        transport="+".join(protos),
        allow_ip=allow_ip,
        message_type=kind,
        request=request,
        packet=" ".join(map(str, plan)),
        sent=not dry_run,
        verify=result_verify,
        stages=tuple(stages.done),
    )
