"""The packet pipeline: captured bytes in, a decision out (server-config.md, spa-protocol.md §8).

Pure: no sockets, no firewall, no clock of its own (``now`` is passed in),
so every decision can be tested exactly. The daemon feeds it what capture
saw and applies what it returns.

Order, as fwknopd's: size (silently ignored outside 140..1500), prefix and
charset pre-filter, HTTP extraction, SOURCE match; then each matching stanza
in file order: DESTINATION, expiry, the HMAC (in the core, before anything
is decrypted), decryption, the replay cache, GnuPG signer, packet age, allow
IP, username, message type, ports. The first stanza that accepts wins.

Two deliberate differences, both invisible in the outcome:

* fwknopd looks the replay digest up before the stanza loop; we look it up
  when a stanza first decrypts the packet. fwknopd only ever stores digests
  of packets that decrypted, so the same packets are refused, and junk never
  pays for the SHA-256.
* When every stanza fails, the packet is refused with the reason of the
  stanza that got furthest (a policy refusal over an HMAC mismatch), and
  every stanza's reason is kept for the log.
"""

from __future__ import annotations

import binascii
import hmac
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from fwknop_core import (
    EncryptionType,
    GpgDecryption,
    HmacKey,
    HmacType,
    InvalidPacket,
    MessageType,
    OpenedPacket,
    RejectReason,
    RijndaelKey,
    SpaMessage,
    extract_http_spa,
    open_packet,
)
from fwknop_core.gpg import GnupgBackend, GpgBackend

from .access import AccessStanza, GpgPolicy
from .commands import cycle_values, substitute
from .nat import NatSettings, plan
from .vocab import (
    MAX_WORDS,
    PROTO_NUMBERS,
    Accepted,
    Decision,
    Grant,
    IPAddress,
    NatError,
    NatGrant,
    Packet,
    Reason,
    Refused,
    ReplayStore,
    RunCommand,
    RunCycle,
)

__all__ = ["Processor", "Settings"]

MIN_DATA = 140
MAX_DATA = 1500
MIN_GPG = 400
_WIRE_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
RIJNDAEL_PREFIX = b"U2FsdGVkX1"
GPG_PREFIX = b"hQ"
_ZERO = ipaddress.IPv4Address(0)  # the allow IP that means "the packet's source"


# ranking for "the stanza that got furthest": later in the pipeline is more telling
_RANK = {reason: rank for rank, reason in enumerate(Reason)}
_CORE = {
    RejectReason.HMAC_MISMATCH: Reason.HMAC_MISMATCH,
    RejectReason.DECRYPT_FAILED: Reason.DECRYPT_FAILED,
    RejectReason.WRONG_ENCRYPTION_TYPE: Reason.NO_DECRYPTION,
    RejectReason.STALE: Reason.STALE,
}


# refusals without detail are made once: a flood gets the same objects back
_TOO_SHORT = Refused(Reason.TOO_SHORT, silent=True)
_TOO_LONG = Refused(Reason.TOO_LONG, silent=True)
_NOT_SPA = Refused(Reason.NOT_SPA)
_PREFIX_STUFFING = Refused(Reason.PREFIX_STUFFING)
_NO_STANZA = Refused(Reason.NO_STANZA)
_CANDIDATE_CACHE = 4096  # source addresses remembered with their matching stanzas


class _Fail(NamedTuple):
    """Why one stanza could not open a packet (returned, not raised: junk is the common case)."""

    reason: Reason
    detail: str = ""


def _refusal(attempts: Sequence[tuple[int, Reason, str]]) -> Refused:
    """What every candidate stanza's refusing gets: the weightiest reason, and all of them."""
    best = max(attempts, key=lambda a: _RANK[a[1]])
    return Refused(best[1], best[2], stanza=best[0], attempts=tuple(attempts))


_HMAC_FAIL = _Fail(Reason.HMAC_MISMATCH)
_EXPIRED = _Fail(Reason.EXPIRED_STANZA)

_MIN_BODY = 36  # libfko's floor for the data in front of the HMAC (the core's MIN_ENCODED)
_HASHES: dict[HmacType, type[hashes.HashAlgorithm]] = {
    HmacType.MD5: hashes.MD5, HmacType.SHA1: hashes.SHA1, HmacType.SHA256: hashes.SHA256,
    HmacType.SHA384: hashes.SHA384, HmacType.SHA512: hashes.SHA512,
    HmacType.SHA3_256: hashes.SHA3_256, HmacType.SHA3_512: hashes.SHA3_512,
}  # fmt: skip
MacCheck = Callable[[bytes], bool]


Keyed = tuple[crypto_hmac.HMAC, int]  # a keyed context, fed the prefix; the MAC's length


def keyed_mac(key: HmacKey, kind: EncryptionType) -> Keyed:
    """An HMAC context keyed with ``key`` and fed ``kind``'s wire prefix, and the MAC's length.

    Copied per packet: the key schedule and the prefix are done once. Through
    cryptography, three calls per packet where the core's ``HmacKey.mac``
    makes a dozen, and every junk packet of a flood pays this once per stanza.
    """
    keyed = crypto_hmac.HMAC(key.secret, _HASHES[key.type]())
    keyed.update(RIJNDAEL_PREFIX if kind is EncryptionType.RIJNDAEL else GPG_PREFIX)
    return keyed, key.mac_length


def mac_check(key: HmacKey, kind: EncryptionType) -> MacCheck:
    """Whether wire data carries a valid HMAC for ``key``: the core's ``hmac_matches``, faster.

    The same computation (HMAC of the restored prefix and the data before the
    MAC, compared in constant time with the MAC as sent) on ``keyed_mac``'s
    context. The core checks the HMAC again in ``open_packet`` before it
    decrypts anything.
    """
    return _check_on(keyed_mac(key, kind))


def _check_on(keyed_and_length: Keyed) -> MacCheck:
    """``mac_check`` on a context from ``keyed_mac`` (only ever copied: it can be shared)."""
    keyed, n = keyed_and_length
    b2a, equal = binascii.b2a_base64, hmac.compare_digest

    def check(data: bytes) -> bool:
        if len(data) - n < _MIN_BODY:
            return False
        h = keyed.copy()
        h.update(data[:-n])
        return equal(b2a(h.finalize(), newline=False)[:n], data[-n:])

    return check


class Screener(Protocol):
    """``Processor.screen``: the refusal of data turned away before decryption, or None."""

    def __call__(self, data: bytes, src: IPAddress, *, inner: bool = False) -> Refused | None: ...


class _Screen(NamedTuple):
    """The cheap path for one set of candidate stanzas (those whose SOURCE matched)."""

    candidates: tuple[AccessStanza, ...]
    # for Rijndael-sized and GnuPG-sized data: the keyed HMAC of each candidate that can
    # decrypt such data, and what a packet gets when all of them fail (the others refuse
    # it before any HMAC); None where some candidate has to go the long way (no HMAC
    # key, DESTINATION, expiry)
    rijndael: tuple[tuple[Keyed, ...], Refused] | None
    gpg: tuple[tuple[Keyed, ...], Refused] | None


class _NoReplay:
    """The replay store of a processor given none: remembers nothing."""

    def seen(self, digest: str) -> bool:
        return False

    def add(self, digest: str, packet: Packet, expires: float) -> bool:
        return True

    def prune(self, now: float) -> int:
        return 0

    def close(self) -> None:
        return None


class _StanzaFailed(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail


class _StopPacket(_StanzaFailed):
    """A refusal that ends processing of the packet (no further stanza is tried)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The fwknopd.conf values the pipeline reads."""

    max_age: int | None = 120  # None: packet aging off
    http: bool = False  # ENABLE_SPA_OVER_HTTP
    x_forwarded_for: bool = False
    destination_rule: bool = False  # ENABLE_DESTINATION_RULE
    test_mode: bool = False
    ipv6_grants: bool = False  # whether the firewall can open for IPv6 sources
    sudo_exe: str = "/usr/bin/sudo"  # SUDO_EXE, for ENABLE_CMD_SUDO_EXEC
    nat: NatSettings = field(default_factory=NatSettings)  # what NAT the firewall does


GpgFactory = Callable[[GpgPolicy], GpgBackend]


def _gnupg(policy: GpgPolicy) -> GpgBackend:
    return GnupgBackend(policy.home_dir, policy.exe)


class Processor:
    """Decides one packet at a time against a fixed configuration (swap the object to reload)."""

    def __init__(
        self,
        stanzas: Sequence[AccessStanza],
        settings: Settings,
        replay: ReplayStore | None = None,
        gpg_factory: GpgFactory = _gnupg,
    ) -> None:
        self.stanzas = tuple(stanzas)
        self.settings = settings
        self.replay = replay if replay is not None else _NoReplay()
        self._gpg_factory = gpg_factory
        self._gpg: dict[tuple[str, str], GpgBackend] = {}
        self._http = settings.http
        self._by_source: dict[int, tuple[IPAddress, _Screen]] = {}
        self._screens: dict[tuple[int, ...], _Screen] = {}
        self._plain: dict[tuple[int, Reason], Refused] = {}
        self._keyed = {
            s.number: (keyed_mac(s.hmac_key, EncryptionType.RIJNDAEL),
                       keyed_mac(s.hmac_key, EncryptionType.GPG))
            for s in self.stanzas if s.hmac_key is not None
        }  # fmt: skip
        # the same contexts, for the stanza-by-stanza path
        self._macs = {n: (_check_on(r), _check_on(g)) for n, (r, g) in self._keyed.items()}
        self.screen: Screener = self._screener()

    # -- the pipeline --------------------------------------------------------

    def process(self, packet: Packet, now: float) -> Decision:
        """Decide what ``packet`` gets; never raises for anything in the packet."""
        data, src = packet.payload, packet.src
        refused = self.screen(data, src)
        if refused is not None:
            return refused
        forwarded = None
        if self._http and data[:5].upper() == b"GET /":
            try:
                http = extract_http_spa(data, forwarded_for=self.settings.x_forwarded_for)
            except InvalidPacket as bad:  # its only error: an X-Forwarded-For naming no address
                return Refused(Reason.FORWARDED_FOR, bad.detail)
            if http is None:
                return Refused(Reason.NOT_SPA, "HTTP request without SPA data")
            data = http.data.encode("ascii")
            if len(data) < MIN_DATA:
                return Refused(Reason.TOO_SHORT, f"{len(data)} characters in the HTTP request")
            refused = self.screen(data, src, inner=True)  # the SPA data inside: the same way
            if refused is not None:
                return refused
            if http.forwarded_for is not None:
                forwarded = ipaddress.IPv4Address(http.forwarded_for)
        return self._try_stanzas(self._candidates(src), data, packet, forwarded, now)

    def _screener(self) -> Screener:
        """``screen``: a closure over this processor's state (it runs for every packet)."""
        by_source, screen_for, http = self._by_source, self._screen_for, self._http
        b2a, equal = binascii.b2a_base64, hmac.compare_digest

        def screen(data: bytes, src: IPAddress, *, inner: bool = False) -> Refused | None:
            """The refusal of data turned away before any decryption, or None to go the whole way.

            What ``process`` returns for such a packet, and the same object each
            time for the same verdict: the size, prefix and character checks,
            the SOURCE match, and, for the common case of a flood, every
            candidate stanza's HMAC failing, decided in one loop (exactly what
            the stanza-by-stanza path would return). Capture calls this for
            packets whose verdict is to be counted, not logged, to count them
            without making a ``Packet`` of each. ``inner``: ``data`` came out of
            an HTTP request already.
            """
            size = len(data)
            if size < MIN_DATA:
                return _TOO_SHORT
            if size > MAX_DATA:
                return _TOO_LONG
            if http and not inner and data[:5].upper() == b"GET /":
                return None  # the SPA data is inside: process() takes it out first
            if data.startswith(RIJNDAEL_PREFIX) or (size > MIN_GPG and data.startswith(GPG_PREFIX)):
                return _PREFIX_STUFFING
            if data.translate(None, _WIRE_CHARS):
                return _NOT_SPA
            entry = by_source.get(id(src))
            found = entry[1] if entry is not None and entry[0] is src else screen_for(src)
            if not found.candidates:
                return _NO_STANZA
            check = found.rijndael if size < MIN_GPG else found.gpg
            if check is None:
                return None
            macs, refused = check
            for keyed, n in macs:  # mac_check's computation, inline: once per stanza
                if size - n >= _MIN_BODY:
                    h = keyed.copy()
                    h.update(data[:-n])
                    # b2a's newline is cut off with the padding: no keyword to parse
                    if equal(b2a(h.finalize())[:n], data[-n:]):
                        return None
            return refused

        return screen

    def _candidates(self, src: IPAddress) -> tuple[AccessStanza, ...]:
        """The stanzas whose SOURCE matches ``src``."""
        entry = self._by_source.get(id(src))
        screen = entry[1] if entry is not None and entry[0] is src else self._screen_for(src)
        return screen.candidates

    def _screen_for(self, src: IPAddress) -> _Screen:
        """The cheap path for ``src``, remembered per address.

        Keyed by the address object's identity: hashing an ipaddress object
        runs Python code, and capture hands us one object per source anyway.
        Each entry holds its address, so an identity is never reused while
        it is in the cache; another object for the same address just misses.
        """
        found = tuple(s for s in self.stanzas if s.matches_source(src))
        numbers = tuple(s.number for s in found)
        screen = self._screens.get(numbers)
        if screen is None:
            screen = self._screens[numbers] = self._make_screen(found)
        if len(self._by_source) >= _CANDIDATE_CACHE:
            self._by_source.clear()  # a spoofed flood of many sources: start over
        self._by_source[id(src)] = (src, screen)
        return screen

    def _make_screen(self, candidates: tuple[AccessStanza, ...]) -> _Screen:
        if not candidates:
            return _Screen(candidates, None, None)  # screen refuses these before any check

        def checks(gpg_sized: bool) -> tuple[tuple[Keyed, ...], Refused] | None:
            found = []
            attempts: list[tuple[int, Reason, str]] = []
            for stanza in candidates:
                if stanza.destination is not None or stanza.expires_at is not None:
                    return None  # this stanza refuses for another reason, or first
                if (stanza.gpg if gpg_sized else stanza.key) is None:
                    # it cannot decrypt such data and says so before any HMAC (a GnuPG
                    # stanza, for Rijndael-sized junk): nothing to compute for it
                    attempts.append((stanza.number, Reason.NO_DECRYPTION,
                                     "GnuPG" if gpg_sized else "Rijndael"))  # fmt: skip
                    continue
                if stanza.hmac_key is None:
                    return None
                found.append(self._keyed[stanza.number][gpg_sized])
                attempts.append((stanza.number, Reason.HMAC_MISMATCH, ""))
            return tuple(found), _refusal(attempts)  # as the stanza-by-stanza path has it

        return _Screen(candidates, checks(False), checks(True))

    def _try_stanzas(
        self,
        candidates: tuple[AccessStanza, ...],
        data: bytes,
        packet: Packet,
        forwarded: IPAddress | None,
        now: float,
    ) -> Decision:
        attempts: list[tuple[int, Reason, str]] = []
        replay_checked = False
        accepted: Accepted | RunCommand | None = None
        for stanza in candidates:
            opened = self._open(stanza, data, packet, now)
            if isinstance(opened, _Fail):
                attempts.append((stanza.number, opened.reason, opened.detail))
                continue
            try:
                if not replay_checked:
                    self._check_replay(packet, opened)
                    replay_checked = True
                outcome = self._policy(stanza, opened, packet, forwarded, now)
            except _StopPacket as stop:
                attempts.append((stanza.number, stop.reason, stop.detail))
                break
            except _StanzaFailed as failed:
                attempts.append((stanza.number, failed.reason, failed.detail))
                continue
            if isinstance(outcome, RunCycle):
                return outcome  # a cycle runs even in --test mode, as fwknopd's do
            if not self.settings.test_mode:
                return outcome if isinstance(outcome, RunCommand) else Accepted(outcome, opened)
            if isinstance(outcome, RunCommand):  # --test: logged, not run; the next stanza
                accepted = accepted or replace(outcome, test_only=True)
            else:
                accepted = accepted or Accepted(outcome, opened, test_only=True)
        if accepted is not None:
            return accepted
        if len(attempts) == 1 and not attempts[0][2]:
            # the flood case (one stanza, a bare reason): the same object every time
            key = (attempts[0][0], attempts[0][1])
            plain = self._plain.get(key)
            if plain is None:
                plain = self._plain[key] = Refused(key[1], stanza=key[0], attempts=(attempts[0],))
            return plain
        return _refusal(attempts)

    def _open(
        self, stanza: AccessStanza, data: bytes, packet: Packet, now: float
    ) -> OpenedPacket | _Fail:
        if stanza.destination is not None and not stanza.matches_destination(packet.dst or _ZERO):
            return _Fail(Reason.DESTINATION, f"destination {packet.dst}")
        if stanza.expires_at is not None and stanza.expired(now):
            return _EXPIRED
        key: RijndaelKey | GpgDecryption
        if stanza.key is not None and len(data) < MIN_GPG:
            key, kind = stanza.key, EncryptionType.RIJNDAEL
        elif stanza.gpg is not None and len(data) >= MIN_GPG:
            key, kind = self._gpg_for(stanza.gpg), EncryptionType.GPG
        else:
            return _Fail(Reason.NO_DECRYPTION, "GnuPG" if len(data) >= MIN_GPG else "Rijndael")
        # the HMAC first, as a plain check: junk is turned away without an exception
        if stanza.hmac_key is not None and not self._macs[stanza.number][
            kind is EncryptionType.GPG
        ](data):
            return _HMAC_FAIL
        try:
            # an IPv6 allow IP (our extension) is opened here and judged by policy below
            return open_packet(data, key, hmac_key=stanza.hmac_key, allow_ipv6=True)
        except InvalidPacket as failure:
            reason = _CORE.get(failure.reason, Reason.MALFORMED)
            # the core's own wording where ours is generic; never the same words twice
            return _Fail(reason, failure.detail if reason is not Reason.MALFORMED else str(failure))

    def _check_replay(self, packet: Packet, opened: OpenedPacket) -> None:
        # fwknopd's digest of the text (its digest.cache holds those), and the message's:
        # the same for a GnuPG packet re-framed into other text that gpg still opens
        digests = opened.replay_digests
        if self.settings.test_mode:  # --test: decide, remember nothing
            if any(self.replay.seen(digest) for digest in digests):
                raise _StopPacket(Reason.REPLAY)
            return
        # remembered before the policy checks, as fwknopd does, for as long as the
        # packet could still pass the age check; each looked up and recorded in one step
        age = self.settings.max_age
        keep_until = opened.message.timestamp + age + 1 if age is not None else float("inf")
        for digest in reversed(digests):  # the message's first: it covers every variant
            if not self.replay.add(digest, packet, keep_until):
                raise _StopPacket(Reason.REPLAY)

    def _gpg_for(self, policy: GpgPolicy) -> GpgDecryption:
        slot = (policy.home_dir, policy.exe)
        backend = self._gpg.get(slot)
        if backend is None:
            backend = self._gpg[slot] = self._gpg_factory(policy)
        return GpgDecryption(backend, policy.decrypt_pw)

    def _policy(
        self,
        stanza: AccessStanza,
        opened: OpenedPacket,
        packet: Packet,
        forwarded: IPAddress | None,
        now: float,
    ) -> Grant | RunCommand | RunCycle:
        msg = opened.message
        if stanza.gpg is not None and opened.encryption_type is EncryptionType.GPG:
            _check_signer(stanza.gpg, opened)
        age = self.settings.max_age
        if age is not None:
            delta = abs(int(now) - msg.timestamp)
            if delta > age:
                raise _StanzaFailed(Reason.STALE, f"time difference is {delta} seconds")
        allow = ipaddress.ip_address(msg.allow_address)  # 198.017.0.2 is 198.15.0.2, as fwknopd
        if allow == _ZERO:
            if stanza.require_source_address:
                raise _StanzaFailed(Reason.SOURCE_REQUIRED)
            source: IPAddress = forwarded or packet.src
        else:
            source = allow
        if stanza.require_username is not None and msg.username != stanza.require_username:
            raise _StanzaFailed(Reason.USERNAME, f"username {msg.username!r}")
        if msg.message_type.has_nat and not self.settings.nat.allows(msg.message_type):
            raise _StanzaFailed(Reason.NAT, msg.message_type.label)
        if stanza.cycle is not None:
            return self._cycle(stanza, msg, source, packet)
        if msg.message_type is MessageType.COMMAND:
            return self._command(stanza, msg, source, packet)
        requested = tuple((a.proto, a.port) for a in msg.access)
        if stanza.restrict_ports and any(r in stanza.restrict_ports for r in requested):
            raise _StanzaFailed(Reason.PORTS, _ports_text(requested))
        if stanza.open_ports is not None and not all(r in stanza.open_ports for r in requested):
            raise _StanzaFailed(Reason.PORTS, _ports_text(requested))
        nat = None
        if stanza.nat is not None or msg.message_type.has_nat:
            nat = self._nat(stanza, msg, requested[0], source)
        if source.version == 6 and not self.settings.ipv6_grants:
            raise _StanzaFailed(Reason.IPV6_ALLOW, str(source))
        timeout = stanza.timeout_for(msg.client_timeout)
        return Grant(
            source=source,
            destination=packet.dst if self.settings.destination_rule else None,
            ports=requested,
            timeout=timeout,
            expires=int(now) + timeout,
            stanza=stanza.number,
            username=msg.username,
            message_type=msg.message_type,
            nat=nat,
        )

    def _nat(
        self, stanza: AccessStanza, msg: SpaMessage, first: tuple[str, int], source: IPAddress
    ) -> NatGrant | None:
        """The NAT a request gets (nat.py), or why it gets none."""
        try:
            nat = plan(stanza.nat, self.settings.nat, msg.message_type, msg.nat, first)
        except NatError as exc:
            # fwknopd drops such a packet once its stanza is decided: no other stanza gets it
            raise _StopPacket(Reason.NAT_REFUSED, str(exc)) from None
        if nat is None:
            return None
        if not self.settings.nat.enabled:  # FORCE_NAT, and the firewall does no NAT
            raise _StanzaFailed(Reason.NAT, "FORCE_NAT")
        if source.version != 4:
            raise _StanzaFailed(Reason.NAT_REFUSED, f"no NAT for IPv6 {source}")
        return nat

    def _command(
        self, stanza: AccessStanza, msg: SpaMessage, source: IPAddress, packet: Packet
    ) -> RunCommand:
        """A command message, for a stanza with ENABLE_CMD_EXEC (§3.5)."""
        policy = stanza.command_exec
        if policy is None:
            raise _StanzaFailed(Reason.COMMAND)
        command = msg.command or ""
        argv = policy.argv(command, self.settings.sudo_exe)
        if not argv or len(argv) > MAX_WORDS:
            # fwknopd takes the packet and runs nothing: no other stanza gets it
            raise _StopPacket(Reason.COMMAND_WORDS, f"{len(argv)} words")
        return RunCommand(
            command, argv, policy.run_as, source, packet.src, stanza.number, msg.username
        )

    def _cycle(
        self, stanza: AccessStanza, msg: SpaMessage, source: IPAddress, packet: Packet
    ) -> RunCycle:
        """A command cycle stanza: its open and close commands for this request (§3.5)."""
        cycle = stanza.cycle
        assert cycle is not None  # noqa: S101 - only called for cycle stanzas
        if not msg.access:
            raise _StanzaFailed(Reason.CYCLE, "a command message")
        first = msg.access[0]  # fwknopd's variables take the first proto/port only
        values = cycle_values(
            source=source,
            packet_src=packet.src,
            packet_dst=packet.dst,
            proto=PROTO_NUMBERS.get(first.proto, 0),
            port=first.port,
            timestamp=msg.timestamp,
            client_timeout=msg.client_timeout,
            timer=cycle.timer,
        )
        close = None if cycle.close is None else substitute(cycle.close, values)
        return RunCycle(
            substitute(cycle.open, values),
            close,
            msg.client_timeout or cycle.timer,
            source,
            packet.src,
            stanza.number,
            msg.username,
        )


def _check_signer(policy: GpgPolicy, opened: OpenedPacket) -> None:
    if not policy.require_sig:
        return
    sig = opened.gpg_signature
    if sig is None:
        raise _StanzaFailed(Reason.GPG_SIGNATURE, "the packet is not signed")
    if not sig.trusted and not policy.ignore_sig_verify_error:
        state = "bad" if not sig.good else f"from a key of validity {sig.validity}"
        raise _StanzaFailed(Reason.GPG_SIGNATURE, f"signature {state} ({sig.short_id})")
    if policy.fingerprints and sig.fingerprint not in policy.fingerprints:
        raise _StanzaFailed(
            Reason.GPG_SIGNATURE, f"fingerprint {sig.fingerprint} is not in GPG_FINGERPRINT_ID"
        )
    if policy.remote_ids and sig.short_id not in policy.remote_ids:
        raise _StanzaFailed(Reason.GPG_SIGNATURE, f"ID {sig.short_id} is not in GPG_REMOTE_ID")


def _ports_text(ports: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"{proto}/{port}" for proto, port in ports)
