"""ipfw (FreeBSD, macOS): fwknopd's numbered rules in an active set, drained through a disabled one.

As fwknopd's ipfw build does (server-config.md §2.4, §4.6), an access rule
is ``ipfw add NUM set ACTIVE pass PROTO from SRC to me dst-port PORT setup
keep-state // _exp_EXP``, numbered from ``IPFW_START_RULE_NUM`` within
``IPFW_MAX_RULES``, the protocol as its number. An expired rule is not
deleted but moved to the expire set (``ipfw set move rule NUM to EXPIRE``),
which start-up disables: the rule stops matching new connections while the
dynamic states it made keep established ones alive. Every
``IPFW_EXPIRE_PURGE_INTERVAL`` seconds the expire set is deleted
(``ipfw delete set EXPIRE``) once ``ipfw -d set EXPIRE list`` shows no
dynamic rule left; its numbers are then free again.

Where we differ from fwknopd, and why:

* each opening gets its own number (fwknopd numbers all ports of a knock
  alike), so a knock that extends one port replaces that rule alone;
* ``setup`` is written for tcp only: it matches TCP SYN packets, so on a udp
  rule it would match nothing (the spec's "only matters for tcp");
* the expire set is disabled at every start, not only with
  ``FLUSH_IPFW_AT_INIT``: an enabled expire set would keep passing traffic;
* set 0 is ipfw's default set: it is never deleted or disabled. With an
  active set 0, its rules are read at start and their numbers never handed
  out, and a flush deletes our rules by number; with an expire set 0,
  expired rules are deleted at once instead of drained;
* a grant is made whole or not at all: when one of its rules cannot be
  added, the ones added before it are deleted again.

The daemon calls ``expire`` when the next opening or the next purge is due
(``next_expiry``). ipfw does not run on Linux: these argv lists are pinned by
tests only.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable

from ..config import ServerConfig
from ..vocab import PROTO_NUMBERS
from .base import Firewall, FirewallError, Opening, OpeningKey, listed_opening
from .runner import CommandRunner, RunsCommands, Tools

__all__ = ["Ipfw", "IpfwRules", "dynamic_rules", "parse_ipfw_rule"]

log = logging.getLogger("fwknop_server.firewall")

_MAX_NUMBER = 65534  # 65535 is ipfw's default rule
_RULE = re.compile(
    r"^(?:#\s*DISABLED\s+)?(?P<num>\d+)\s+(?:set\s+\d+\s+)?(?:allow|pass|permit|accept)\s+"
    r"(?P<proto>\w+)\s+from\s+(?P<src>\S+)\s+to\s+(?P<dst>\S+)\s+dst-port\s+(?P<port>\d+)\b"
    r".*//\s*_exp_(?P<exp>\d+)"
)
_NUMBERED = re.compile(r"^(?:#\s*DISABLED\s+)?(\d+)\s")


class IpfwRules:
    """Pure argv builders for the active and the expire set."""

    def __init__(self, exe: str, *, active_set: int, expire_set: int) -> None:
        self.exe = exe
        self.active_set = active_set
        self.expire_set = expire_set

    def add(self, number: int, opening: Opening) -> list[str]:
        """fwknopd's access rule, numbered ``number``, in the active set."""
        dst = "me" if opening.destination is None else str(opening.destination)
        setup = ["setup"] if opening.proto == "tcp" else []
        return [
            self.exe, "add", str(number), "set", str(self.active_set),
            "pass", str(PROTO_NUMBERS[opening.proto]),
            "from", str(opening.source), "to", dst, "dst-port", str(opening.port),
            *setup, "keep-state", "//", f"_exp_{opening.expires}",
        ]  # fmt: skip

    def check_state(self, number: int) -> list[str]:
        """The optional ``check-state`` rule (``IPFW_ADD_CHECK_STATE``)."""
        return [self.exe, "add", str(number), "set", str(self.active_set), "check-state"]

    def disable_expire_set(self) -> list[str]:
        """Disable the expire set: its rules no longer match, their states live on."""
        return [self.exe, "set", "disable", str(self.expire_set)]

    def move_to_expire_set(self, number: int) -> list[str]:
        """Retire a rule: move it to the (disabled) expire set."""
        return [self.exe, "set", "move", "rule", str(number), "to", str(self.expire_set)]

    def delete_rule(self, number: int, set_number: int) -> list[str]:
        """Delete one numbered rule of one set."""
        return [self.exe, "set", str(set_number), "delete", str(number)]

    def delete_set(self, set_number: int) -> list[str]:
        """Delete every rule of a set."""
        return [self.exe, "delete", "set", str(set_number)]

    def list_set(self, set_number: int) -> list[str]:
        """The rules of a set, one per line."""
        return [self.exe, "set", str(set_number), "list"]

    def list_expire_dynamic(self) -> list[str]:
        """The expire set's rules and the dynamic rules (states) they still hold."""
        return [self.exe, "-d", "set", str(self.expire_set), "list"]

    def list_all(self) -> list[str]:
        """Every rule of every set (``--fw-list-all``)."""
        return [self.exe, "list"]

    def show(self, set_number: int) -> list[str]:
        """A set for people (``--fw-list``): dynamic rules, set numbers, last-match times."""
        return [self.exe, "-d", "-S", "-T", "set", str(set_number), "list"]


def parse_ipfw_rule(line: str) -> tuple[int, OpeningKey, int] | None:
    """An access rule as ipfw lists it: its number, (source, proto, port), and its expiry."""
    match = _RULE.match(line.strip())
    found = listed_opening(match)
    if match is None or found is None:
        return None
    return int(match["num"]), *found


def _numbers(listing: str) -> list[int]:
    return [int(m.group(1)) for line in listing.splitlines() if (m := _NUMBERED.match(line))]


def dynamic_rules(listing: str) -> list[int]:
    """The rule numbers of the dynamic rules in ``ipfw -d ... list`` output."""
    _static, marker, dynamic = listing.partition("## Dynamic rules")
    if not marker:
        return []
    numbers = []
    for line in dynamic.splitlines()[1:]:
        match = _NUMBERED.match(line.strip() + " ")
        if match is not None:
            numbers.append(int(match.group(1)))
    return numbers


class Ipfw(Firewall, RunsCommands):
    """The ipfw backend (``FIREWALL_TYPE ipfw``): numbered rules, expired through a disabled set."""

    name = "ipfw"
    default_exe = "/sbin/ipfw"

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Ipfw:
        """The ``IPFW_*`` rule numbers and sets, ``FLUSH_IPFW_*``."""
        rules = IpfwRules(
            config.firewall_exe(cls.default_exe),
            active_set=config.number("IPFW_ACTIVE_SET_NUM"),
            expire_set=config.number("IPFW_EXPIRE_SET_NUM"),
        )
        return cls(
            tools.run,
            rules,
            start_number=config.number("IPFW_START_RULE_NUM"),
            max_rules=config.number("IPFW_MAX_RULES"),
            check_state=config.flag("IPFW_ADD_CHECK_STATE"),
            purge_interval=config.number("IPFW_EXPIRE_PURGE_INTERVAL"),
            flush_at_init=config.flag("FLUSH_IPFW_AT_INIT"),
            flush_at_exit=config.flag("FLUSH_IPFW_AT_EXIT"),
        )

    def __init__(
        self,
        run: CommandRunner,
        rules: IpfwRules,
        *,
        start_number: int = 10000,
        max_rules: int = 65535,
        check_state: bool = False,
        purge_interval: int = 30,
        flush_at_init: bool = True,
        flush_at_exit: bool = True,
    ) -> None:
        super().__init__(flush_at_init=flush_at_init, flush_at_exit=flush_at_exit)
        self._run = run
        self.rules = rules
        self.first = max(start_number, 1)
        self.last = min(start_number + max_rules - 1, _MAX_NUMBER)
        self.check_state = check_state
        self.purge_interval = purge_interval
        self.numbers: dict[OpeningKey, int] = {}  # the rule number of each opening
        self.draining: set[int] = set()  # numbers in the expire set, until it is purged
        self._reserved: set[int] = set()  # numbers found in the active set at start, not ours
        self._check_state: int | None = None  # the number of the check-state rule we added
        self._next_purge: float | None = None

    @property
    def _drains(self) -> bool:
        return self.rules.expire_set > 0

    def start(self, now: float) -> None:
        """Flush (if configured), check-state, disable the expire set, track what is there.

        Set 0 is never flushed whole (it is everyone's): it is read instead, its
        numbers are never handed out, and with ``FLUSH_IPFW_AT_INIT`` the access
        rules of ours an earlier run left there are deleted one by one.
        """
        active = ""
        if self.flush_at_init and self.rules.active_set > 0:
            self._ok(self.rules.delete_set(self.rules.active_set))  # fails when empty
        else:
            status, out, _err = self._run(self.rules.list_set(self.rules.active_set))
            active = out if status == 0 else ""
            self._reserved = set(_numbers(active))
            if self.flush_at_init:
                active = self._delete_ours(active)
        if self.check_state:
            if not re.search(rf"(?m)^{self.first}\s+check-state\b", active):
                self._must(self.rules.check_state(self.first))
            self._check_state = self.first
        if self._drains:
            self._must(self.rules.disable_expire_set())
            status, out, _err = self._run(self.rules.list_set(self.rules.expire_set))
            if status == 0:
                self.draining.update(_numbers(out))
        if not self.flush_at_init:
            self._adopt(active, now)

    def _delete_ours(self, listing: str) -> str:
        """Delete the access rules of ours in ``listing`` (set 0); what is left of it."""
        kept = []
        for line in listing.splitlines():
            parsed = parse_ipfw_rule(line)
            number = None if parsed is None else parsed[0]
            if (
                number is not None
                and self.first <= number <= self.last
                and self._ok(self.rules.delete_rule(number, self.rules.active_set))
            ):
                log.info("Deleted rule %d (left by an earlier run)", number)
                self._reserved.discard(number)
                continue
            kept.append(line)
        return "\n".join(kept)

    def _adopt(self, listing: str, now: float) -> None:
        for line in listing.splitlines():
            parsed = parse_ipfw_rule(line)
            if parsed is None:
                continue
            number, key, expires = parsed
            current = self.open.get(key)
            if expires <= now or (current is not None and current.expires >= expires):
                self._retire(number, now)  # expired, or a longer rule for the same port exists
                continue
            if current is not None:
                self._retire(self.numbers[key], now)
            self.open[key] = Opening(key[0], key[1], key[2], expires)
            self.numbers[key] = number
        self._reserved -= {*self.numbers.values(), *self.draining}
        log.info("ipfw: %d grant(s) still open from before", len(self.open))

    def _allocate(self, taken: Iterable[int] = ()) -> int:
        used = {*self.numbers.values(), *self.draining, *self._reserved, self._check_state, *taken}
        for number in range(self.first, self.last + 1):
            if number not in used:
                return number
        raise FirewallError(
            f"no free ipfw rule number in {self.first}..{self.last} "
            "(IPFW_START_RULE_NUM, IPFW_MAX_RULES): access refused until rules expire"
        )

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        """Every rule of the grant, or none: a rule that fails takes the ones before it back."""
        made: list[int] = []
        try:
            for opening, _current in wanted:
                number = self._allocate(made)
                self._must(self.rules.add(number, opening))
                made.append(number)
                log.info(
                    "Added Rule %d for %s, %s/%d expires at %d",
                    number, opening.source, opening.proto, opening.port, opening.expires,
                )  # fmt: skip
        except FirewallError:
            for number in reversed(made):
                if not self._ok(self.rules.delete_rule(number, self.rules.active_set)):
                    log.error("could not take back ipfw rule %d", number)
            if made:
                log.warning("took back %d rule(s) of a grant that could not be made whole",
                            len(made))  # fmt: skip
            raise
        for (opening, current), number in zip(wanted, made, strict=True):
            old = self.numbers.get(opening.key)
            self.numbers[opening.key] = number
            if current is not None and old is not None:
                self._retire(old, now)

    def _retire(self, number: int, now: float) -> None:
        """Move a rule to the expire set (or, with expire set 0, delete it)."""
        if not self._drains:
            if self._ok(self.rules.delete_rule(number, self.rules.active_set)):
                log.info("Deleted rule %d", number)
            else:
                log.warning("ipfw rule %d was already gone", number)
            return
        if self._ok(self.rules.move_to_expire_set(number)):
            log.info("Moved rule %d to set %d.", number, self.rules.expire_set)
            self.draining.add(number)
            if self._next_purge is None:
                self._next_purge = now + self.purge_interval
        else:
            log.warning("could not move ipfw rule %d to set %d", number, self.rules.expire_set)

    def _close(self, due: Iterable[Opening]) -> None:
        for opening in due:
            number = self.numbers.pop(opening.key, None)
            if number is not None:
                log.info("Rule %d expired (expire time %d)", number, opening.expires)
                self._retire(number, opening.expires)

    def expire(self, now: float) -> list[Opening]:
        """Retire what is due, then purge the expire set if its time has come."""
        closed = super().expire(now)
        self._purge(now)
        return closed

    def housekeeping(self, now: float) -> None:
        """The periodic care: purge the expire set when due."""
        self._purge(now)

    def _purge(self, now: float) -> None:
        if not self.draining:
            self._next_purge = None
            return
        if self._next_purge is None:
            self._next_purge = now + self.purge_interval
        if now < self._next_purge:
            return
        self._next_purge = now + self.purge_interval
        status, out, _err = self._run(self.rules.list_expire_dynamic())
        if status != 0 or dynamic_rules(out):
            return  # established connections still use those rules: next time
        if self._ok(self.rules.delete_set(self.rules.expire_set)):
            log.info("Purged set %d (%d rule(s))", self.rules.expire_set, len(self.draining))
            self.draining.clear()
            self._next_purge = None

    def next_expiry(self) -> int | None:
        """When the next opening is due, or the next purge of the expire set."""
        due = super().next_expiry()
        if self._next_purge is None:
            return due
        purge = math.ceil(self._next_purge)
        return purge if due is None else min(due, purge)

    def flush(self) -> None:
        """Delete the active set (by number if it is set 0) and the expire set."""
        if self.rules.active_set > 0:
            self._ok(self.rules.delete_set(self.rules.active_set))
        else:
            ours = {*self.numbers.values(), self._check_state}
            for number in sorted(n for n in ours if n is not None):
                self._ok(self.rules.delete_rule(number, 0))
        if self._drains:
            self._ok(self.rules.delete_set(self.rules.expire_set))
        self.open.clear()
        self.numbers.clear()
        self.draining.clear()
        self._reserved.clear()
        self._check_state = None
        self._next_purge = None

    def listing_all(self) -> str:
        """Every rule of every set (``ipfw list``), as fwknopd's ``--fw-list-all``."""
        status, out, err = self._run(self.rules.list_all())
        return "Listing all ipfw rules...\n" + (out if status == 0 else err)

    def listing(self) -> str:
        """The active and the expire set, as fwknopd's ``--fw-list`` shows them."""
        parts = []
        sets = (("Active", self.rules.active_set), ("Expired", self.rules.expire_set))
        for title, number in sets:
            status, out, err = self._run(self.rules.show(number))
            parts.append(f"{title} Rules (set {number}):\n" + (out if status == 0 else err))
        return "\n".join(parts)
