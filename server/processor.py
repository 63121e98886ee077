"""The packet pipeline: captured bytes in, a decision out (server-config.md, spa-protocol.md §8).

Pure: no sockets, no threads, no processes, no firewall, no clock of its
own (``now`` is passed in), so every decision can be tested exactly. The
daemon feeds it what capture saw and acts on what it returns. The one step
that needs the outside world, GnuPG, is an action too: a GnuPG-sized packet
a stanza must decrypt comes back as ``Deferred`` (the ``GpgJob`` to run, off
the packet path, and where to resume with its outcome).

Order, as fwknopd's: size (silently ignored outside 140..1499), prefix and
charset pre-filter, HTTP extraction, SOURCE match (the flood screen,
``screen.py``); then each matching stanza in file order: DESTINATION,
expiry, the HMAC (before anything is decrypted), decryption, the replay
cache, GnuPG signer, packet age, allow IP, username, message type, ports.
The first stanza that accepts wins. Two checks of fwknop 1.x's: after the
username, ``REQUIRE_OS`` (our extension to SPA stanzas: the fingerprint of
the SYN that opened the packet's TCP connection, as the knock listener saw
it, must meet it; a packet not sent over such a connection is refused), and
for a command message, ``CMD_REGEX``.

The HMAC of each candidate stanza is computed at most once per packet: the
screen checks the candidates up to the first whose HMAC matches and hands
over the core's ``MacMatch``; the stanzas go on from there, and decryption
takes the match instead of checking again.

An x25519 packet (our own format, docs/x25519-spa.md) comes from the
screen already matched to the stanzas that name its client's key and take
its source, and (unless one of them has a DESTINATION or an expiry to
check first) already opened by its one AEAD verification. From there it
goes the way a decrypted fwknop packet goes: the same replay store (its
digest is over the wire text, which has one spelling), packet age, and
each of those stanzas' policy in file order.

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

import ipaddress
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from fwknop_core import (
    MIN_GPG_PACKET,
    MIN_PACKET,
    EncryptionType,
    InvalidPacket,
    MacMatch,
    MessageType,
    OpenedPacket,
    RejectReason,
    SpaMessage,
    X25519Keyring,
    X25519Opened,
    extract_http_spa,
    open_packet,
    replay_digest,
)

from .access import AccessStanza, GpgPolicy
from .commands import cycle_values, substitute
from .config import ServerConfig
from .knock import OsDatabase, OsRequirement, SynMemory
from .nat import NatSettings, for_client, nat_settings, plan
from .screen import LONG_WAY, Candidates, Screen, X25519Way, refusal
from .vocab import (
    MAX_WORDS,
    PROTO_NUMBERS,
    Accepted,
    Attempt,
    Decision,
    Deferred,
    GpgJob,
    GpgOutcome,
    Grant,
    IPAddress,
    NatError,
    NatGrant,
    Packet,
    Reason,
    Refused,
    ReplayStore,
    ReplayUnavailable,
    RunCommand,
    RunCycle,
    proto_name,
)

__all__ = ["Processor", "Settings"]

_ZERO = ipaddress.IPv4Address(0)  # the allow IP that means "the packet's source"
_TCP = 6
_CORE = {
    RejectReason.HMAC_MISMATCH: Reason.HMAC_MISMATCH,
    RejectReason.DECRYPT_FAILED: Reason.DECRYPT_FAILED,
    RejectReason.WRONG_ENCRYPTION_TYPE: Reason.NO_DECRYPTION,
    RejectReason.STALE: Reason.STALE,
}
Steps = Generator[GpgJob, GpgOutcome, Decision]  # a packet's way through the stanzas
Opened = OpenedPacket | X25519Opened[Any]  # what a stanza's policy judges


def _gate(stanza: AccessStanza, packet: Packet, now: float) -> tuple[Reason, str] | None:
    """Why ``stanza`` cannot take ``packet`` whatever it holds (DESTINATION, expiry), or None."""
    if stanza.destination is not None and not stanza.matches_destination(packet.dst or _ZERO):
        return Reason.DESTINATION, f"destination {packet.dst}"
    if stanza.expires_at is not None and stanza.expired(now):
        return Reason.EXPIRED_STANZA, ""
    return None


class _Tally:
    """A packet's way through its stanzas: each refusal, the --test taker, replay done or not."""

    __slots__ = (
        "accepted",
        "attempts",
        "first_opened",
        "forwarded",
        "now",
        "packet",
        "replay_checked",
        "stopped",
    )

    def __init__(self, packet: Packet, forwarded: IPAddress | None, now: float) -> None:
        self.packet = packet
        self.forwarded = forwarded  # the X-Forwarded-For address of an HTTP request
        self.now = now
        self.attempts: list[Attempt] = []
        self.first_opened: Opened | None = None  # for -v -v's dump
        self.accepted: Accepted | RunCommand | None = None
        self.replay_checked = False
        self.stopped = False  # a refusal that ends the packet: no further stanza is tried


class _NoReplay:
    """The replay store of a processor given none: remembers nothing."""

    def seen(self, digest: str) -> bool:
        return False

    def add(self, digest: str, packet: Packet, expires: float) -> bool:
        return True

    def prune(self, now: float) -> int:
        return 0

    def __len__(self) -> int:
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
    nat_ipv6: bool = False  # whether its NAT serves IPv6 clients (nftables)
    sudo_exe: str = "/usr/bin/sudo"  # SUDO_EXE, for ENABLE_CMD_SUDO_EXEC
    nat: NatSettings = field(default_factory=NatSettings)  # what NAT the firewall does

    @classmethod
    def from_config(
        cls,
        config: ServerConfig,
        *,
        test_mode: bool = False,
        ipv6_grants: bool = False,
        nat_capable: bool = False,
    ) -> Settings:
        """The pipeline's view of fwknopd.conf, given what the firewall can open."""
        return cls(
            max_age=config.max_packet_age,
            http=config.flag("ENABLE_SPA_OVER_HTTP"),
            x_forwarded_for=config.flag("ENABLE_X_FORWARDED_FOR"),
            destination_rule=config.flag("ENABLE_DESTINATION_RULE"),
            test_mode=test_mode,
            ipv6_grants=ipv6_grants,
            sudo_exe=config.required("SUDO_EXE"),
            # NAT requests are taken only where the firewall can serve them
            nat=nat_settings(config) if nat_capable else NatSettings(),
        )


class Processor:
    """Decides one packet at a time against a fixed configuration (swap the object to reload)."""

    def __init__(
        self,
        stanzas: Sequence[AccessStanza],
        settings: Settings,
        replay: ReplayStore | None = None,
        *,
        keyring: X25519Keyring[AccessStanza] | None = None,
        syns: SynMemory | None = None,
        os_db: OsDatabase | None = None,
    ) -> None:
        self.stanzas = tuple(stanzas)
        self.settings = settings
        self.replay: ReplayStore = replay if replay is not None else _NoReplay()
        self.syns = syns  # the SYNs the knock listener saw (REQUIRE_OS over TCP)
        self.os_db = os_db
        # keyring: the x25519 clients of these stanzas (serverkey.client_keyring), derived once
        self.screen = Screen(self.stanzas, http=settings.http, keyring=keyring)
        self._check = self.screen.check
        self._http = settings.http
        self._plain: dict[tuple[int, Reason], Refused] = {}

    # -- the pipeline --------------------------------------------------------

    def process(self, packet: Packet, now: float) -> Decision:
        """Decide what ``packet`` gets; never raises for anything in the packet."""
        data, src = packet.payload, packet.src
        verdict = packet.screened
        if verdict is None:
            verdict = self._check(data, src)
        kind = type(verdict)
        if verdict is not LONG_WAY and kind is not MacMatch:
            if kind is X25519Way:
                return self._x25519(verdict, data, packet, None, now)  # type: ignore[arg-type]
            return verdict  # type: ignore[return-value] # a refusal (or MUTED)
        forwarded = None
        if self._http and data[:5].upper() == b"GET /":
            try:
                http = extract_http_spa(data, forwarded_for=self.settings.x_forwarded_for)
            except InvalidPacket as bad:  # its only error: an X-Forwarded-For naming no address
                return Refused(Reason.FORWARDED_FOR, bad.detail)
            if http is None:
                return Refused(Reason.NOT_SPA, "HTTP request without SPA data")
            data = http.data.encode("ascii")
            if len(data) < MIN_PACKET:
                return Refused(Reason.TOO_SHORT, f"{len(data)} characters in the HTTP request")
            if http.forwarded_for is not None:
                forwarded = ipaddress.IPv4Address(http.forwarded_for)
            verdict = self._check(data, src, True)  # the SPA data inside: the same way
            if type(verdict) is X25519Way:
                return self._x25519(verdict, data, packet, forwarded, now)
            if verdict is not LONG_WAY and type(verdict) is not MacMatch:
                return verdict  # type: ignore[return-value]
        match = verdict if isinstance(verdict, MacMatch) else None
        candidates = self.screen.candidates(src)
        return self._run(self._steps(candidates, data, packet, forwarded, now, match=match), packet)

    def _run(self, steps: Steps, packet: Packet, outcome: GpgOutcome | None = None) -> Decision:
        """Take ``steps`` to the decision, or to the GnuPG job it waits for."""
        try:
            job = next(steps) if outcome is None else steps.send(outcome)
        except StopIteration as done:
            if done.value is None:  # a finished generator says nothing more
                raise RuntimeError("a deferred decision was resumed twice") from None
            decision: Decision = done.value
            return decision
        return Deferred(job, packet, partial(self._resume, steps, packet))

    def _resume(self, steps: Steps, packet: Packet, outcome: GpgOutcome) -> Decision:
        return self._run(steps, packet, outcome)

    def _steps(
        self,
        candidates: Candidates,
        data: bytes,
        packet: Packet,
        forwarded: IPAddress | None,
        now: float,
        *,
        match: MacMatch | None,
    ) -> Steps:
        """Each candidate stanza in turn, until one accepts (a generator: GnuPG is yielded)."""
        tally = _Tally(packet, forwarded, now)
        gpg_sized = len(data) >= MIN_GPG_PACKET
        verifier = candidates.verifiers[gpg_sized]
        # the place of the first candidate from here whose HMAC is known to match; those
        # before it (with a key) are known not to: the screen, or an earlier ask, found it
        known = match.index if match is not None else -1
        for place, stanza in enumerate(candidates.stanzas):
            number = stanza.number
            gated = _gate(stanza, packet, now)
            if gated is not None:
                tally.attempts.append((number, *gated))
                continue
            if (stanza.gpg if gpg_sized else stanza.key) is None:
                tally.attempts.append(
                    (number, Reason.NO_DECRYPTION, "GnuPG" if gpg_sized else "Rijndael")
                )
                continue
            if stanza.hmac_key is not None:
                if known < place:  # not asked this far yet: from here to the next match
                    match = verifier.first_match(data, place)
                    known = match.index if match is not None else len(candidates.stanzas)
                if known != place:
                    tally.attempts.append((number, Reason.HMAC_MISMATCH, ""))
                    continue
                verified = match
            else:
                verified = None
            opening = _open(stanza, data, verified, gpg_sized=gpg_sized)
            # GnuPG runs off the packet path: the job goes out, its outcome comes back here
            outcome = (yield opening) if isinstance(opening, GpgJob) else opening
            if isinstance(outcome, InvalidPacket):
                reason = _CORE.get(outcome.reason, Reason.MALFORMED)
                # where ours is generic: fwknopd's words for it, which the core knows (its
                # fko error), else the core's own; never the same words twice
                why = outcome.detail
                if reason is Reason.MALFORMED:
                    why = outcome.reason.fwknop_text or str(outcome)
                tally.attempts.append((number, reason, why))
                continue
            decided = self._decide(tally, stanza, outcome, outcome.replay_digests)
            if decided is not None:
                return decided
            if tally.stopped:
                break
        return self._finish(tally)

    def _x25519(
        self,
        way: X25519Way,
        data: bytes,
        packet: Packet,
        forwarded: IPAddress | None,
        now: float,
    ) -> Decision:
        """An x25519 packet of a known client: the stanzas naming its key, after one AEAD.

        The screen found the stanzas (SOURCE) and, when none of them has a
        DESTINATION or an expiry, opened the packet; otherwise those are
        checked here first, and the packet is opened once for all of them.
        """
        tally = _Tally(packet, forwarded, now)
        route, opened = way.route, way.opened
        stanzas = route.owners
        if opened is None:
            live = []
            for stanza in stanzas:
                gated = _gate(stanza, packet, now)
                if gated is None:
                    live.append(stanza)
                else:
                    tally.attempts.append((stanza.number, *gated))
            if not live:
                return self._finish(tally)
            try:
                opened = route.client.open(data)  # the one AEAD verification
            except InvalidPacket as failure:
                return route.failed(failure)
            stanzas = tuple(live)
        digests = (replay_digest(data),)  # the wire as received: it has one spelling only
        for stanza in stanzas:
            decided = self._decide(tally, stanza, opened, digests)
            if decided is not None:
                return decided
            if tally.stopped:
                break
        return self._finish(tally)

    def _decide(
        self, tally: _Tally, stanza: AccessStanza, opened: Opened, digests: tuple[str, ...]
    ) -> Accepted | RunCommand | RunCycle | None:
        """A packet ``stanza`` could open: replay (once per packet), then its policy.

        The decision to return now, or None to try the next stanza (none,
        when ``tally.stopped``); what was refused is in ``tally.attempts``.
        """
        tally.first_opened = tally.first_opened or opened
        try:
            if not tally.replay_checked:
                self._check_replay(tally.packet, digests, opened.message.timestamp)
                tally.replay_checked = True
            decided = self._policy(stanza, opened, tally.packet, tally.forwarded, tally.now)
        except _StopPacket as stop:
            tally.attempts.append((stanza.number, stop.reason, stop.detail))
            tally.stopped = True
            return None
        except _StanzaFailed as failed:
            tally.attempts.append((stanza.number, failed.reason, failed.detail))
            return None
        before = tuple(tally.attempts)  # fwknopd logs these refusals, then this stanza's grant
        if isinstance(decided, RunCycle):
            # a cycle runs even in --test mode, as fwknopd's do
            return replace(decided, attempts=before)
        if not self.settings.test_mode:
            if isinstance(decided, RunCommand):
                return replace(decided, attempts=before)
            return Accepted(decided, opened, attempts=before)
        if isinstance(decided, RunCommand):  # --test: logged, not run; the next stanza
            tally.accepted = tally.accepted or replace(decided, test_only=True, attempts=before)
        else:
            tally.accepted = tally.accepted or Accepted(
                decided, opened, test_only=True, attempts=before
            )
        return None

    def _finish(self, tally: _Tally) -> Decision:
        """What a packet gets once no stanza accepted it outright (``--test``: the first taker)."""
        if tally.accepted is not None:
            return tally.accepted
        attempts = tally.attempts
        if tally.first_opened is not None:
            return refusal(attempts, opened=tally.first_opened)
        if len(attempts) == 1 and not attempts[0][2]:
            # the flood case (one stanza, a bare reason): the same object every time
            key = (attempts[0][0], attempts[0][1])
            plain = self._plain.get(key)
            if plain is None:
                plain = self._plain[key] = Refused(key[1], stanza=key[0], attempts=(attempts[0],))
            return plain
        return refusal(attempts)

    def _check_replay(self, packet: Packet, digests: tuple[str, ...], timestamp: int) -> None:
        # a fwknop packet has two: fwknopd's digest of the text (its digest.cache holds
        # those), and the message's, the same for a GnuPG packet re-framed into other text
        # that gpg still opens; an x25519 packet has one spelling, so one digest
        if self.settings.test_mode:  # --test: decide, remember nothing
            if any(self.replay.seen(digest) for digest in digests):
                raise _StopPacket(Reason.REPLAY)
            return
        # remembered before the policy checks, as fwknopd does, for as long as the
        # packet could still pass the age check; each looked up and recorded in one step
        age = self.settings.max_age
        keep_until = timestamp + age + 1 if age is not None else float("inf")
        # the message's first: it covers every variant (a shared store sends only it to Redis)
        for digest in reversed(digests):
            try:
                new = self.replay.add(digest, packet, keep_until)
            except ReplayUnavailable as down:  # a shared cache that may not be stood in for
                raise _StopPacket(Reason.REPLAY_UNAVAILABLE, str(down)) from None
            if not new:
                raise _StopPacket(Reason.REPLAY)

    def _policy(
        self,
        stanza: AccessStanza,
        opened: Opened,
        packet: Packet,
        forwarded: IPAddress | None,
        now: float,
    ) -> Grant | RunCommand | RunCycle:
        msg = opened.message
        if (
            stanza.gpg is not None
            and type(opened) is OpenedPacket
            and opened.encryption_type is EncryptionType.GPG
        ):
            _check_signer(stanza.gpg, opened)
        age = self.settings.max_age
        if age is not None:
            delta = abs(int(now) - msg.timestamp)
            if delta > age:
                raise _StanzaFailed(Reason.STALE, f"{delta} seconds")
        allow = ipaddress.ip_address(msg.allow_address)  # 198.017.0.2 is 198.15.0.2, as fwknopd
        if allow == _ZERO:
            if stanza.require_source_address:
                raise _StanzaFailed(Reason.SOURCE_REQUIRED)
            source: IPAddress = forwarded or packet.src
        else:
            source = allow
        if stanza.require_username is not None and msg.username != stanza.require_username:
            raise _StanzaFailed(
                Reason.USERNAME,
                f"({msg.username}) does not match required username: {stanza.require_username}",
            )
        if stanza.require_os is not None:
            self._check_os(stanza.require_os, packet)
        if msg.message_type.has_nat and not self.settings.nat.allows(msg.message_type):
            raise _StanzaFailed(Reason.NAT, msg.message_type.label)
        if msg.message_type is MessageType.COMMAND:
            if stanza.cycle is not None:
                raise _StanzaFailed(Reason.CYCLE, "a command message")
            return self._command(stanza, msg, source, packet)
        requested = tuple((a.proto, a.port) for a in msg.access)
        # a cycle's commands open what the client asked for too: the same ports are allowed
        # (fwknopd skips these checks for a cycle stanza)
        if stanza.restrict_ports and any(r in stanza.restrict_ports for r in requested):
            raise _StanzaFailed(Reason.PORTS, _ports_text(requested))
        if stanza.open_ports is not None and not all(r in stanza.open_ports for r in requested):
            raise _StanzaFailed(Reason.PORTS, _ports_text(requested))
        if stanza.cycle is not None:
            return self._cycle(stanza, msg, source, packet)
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

    def _check_os(self, need: OsRequirement, packet: Packet) -> None:
        """REQUIRE_OS in an SPA stanza (ours): the SYN of the packet's connection must meet it."""
        found = None
        if packet.proto == _TCP and packet.dst is not None and self.syns is not None:
            found = self.syns.find(packet.src, packet.sport, packet.dst, packet.dport)
        if found is None:
            why = "no SYN seen" if packet.proto == _TCP else f"sent over {proto_name(packet.proto)}"
            raise _StanzaFailed(Reason.OS_NO_SYN, f"{why}; {need}")
        guesses = self.os_db.guesses(found) if self.os_db is not None else ()
        if not need.met_by(guesses):
            seen = ", ".join(str(g) for g in guesses) or "no signature matches"
            raise _StanzaFailed(Reason.OS_MISMATCH, f"expected {need}, got {seen}")

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
        if source.version == 6 and not self.settings.nat_ipv6:
            raise _StanzaFailed(Reason.NAT_REFUSED, f"no NAT for IPv6 {source} on this firewall")
        try:
            return for_client(nat, source, self.settings.nat.translate_ip)
        except NatError as exc:
            raise _StanzaFailed(Reason.NAT_REFUSED, str(exc)) from None

    def _command(
        self, stanza: AccessStanza, msg: SpaMessage, source: IPAddress, packet: Packet
    ) -> RunCommand:
        """A command message, for a stanza with ENABLE_CMD_EXEC (§3.5)."""
        policy = stanza.command_exec
        if policy is None:
            raise _StanzaFailed(Reason.COMMAND)
        command = msg.command or ""
        if stanza.cmd_regex is not None and not stanza.cmd_regex.search(command):
            raise _StanzaFailed(Reason.COMMAND_REGEX, f"{command!r}")
        argv = policy.argv(command, self.settings.sudo_exe)
        if not argv or policy.words(argv) > MAX_WORDS:
            # fwknopd takes the packet and runs nothing: no other stanza gets it
            raise _StopPacket(Reason.COMMAND_WORDS, f"{policy.words(argv)} words")
        return RunCommand(
            command, argv, policy.run_as, source, packet.src, stanza.number, msg.username
        )

    def _cycle(
        self, stanza: AccessStanza, msg: SpaMessage, source: IPAddress, packet: Packet
    ) -> RunCycle:
        """A command cycle stanza: its open and close commands for this request (§3.5)."""
        cycle = stanza.cycle
        assert cycle is not None  # noqa: S101 - only called for cycle stanzas
        first = msg.access[0]  # fwknopd's variables take the first proto/port only
        wait = cycle.close_after(msg.client_timeout)
        values = cycle_values(
            source=source,
            packet_src=packet.src,
            packet_dst=packet.dst,
            proto=PROTO_NUMBERS.get(first.proto, 0),
            port=first.port,
            timestamp=msg.timestamp,
            wait=wait,
        )
        close = None if cycle.close is None else substitute(cycle.close, values)
        return RunCycle(
            substitute(cycle.open, values),
            close,
            wait,
            source,
            packet.src,
            stanza.number,
            msg.username,
        )


def _open(
    stanza: AccessStanza, data: bytes, verified: MacMatch | None, *, gpg_sized: bool
) -> GpgOutcome | GpgJob:
    """How ``stanza`` opens ``data`` (its HMAC checked): opened, refused, or a GnuPG job to run.

    The one place a packet's format meets a stanza's keys; a new kind of
    packet is opened here too.
    """
    if gpg_sized and stanza.gpg is not None:
        policy = stanza.gpg
        return GpgJob(
            data, policy.home_dir, policy.exe, policy.decrypt_pw, verified, policy.decrypt_id
        )
    assert stanza.key is not None  # noqa: S101 - the loop asks only stanzas that have one
    try:
        # an IPv6 allow IP (our extension) is opened here and judged by policy later
        return open_packet(data, stanza.key, verified=verified, allow_ipv6=True)
    except InvalidPacket as failure:
        return failure


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
