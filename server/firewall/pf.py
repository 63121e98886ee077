"""pf (OpenBSD, FreeBSD): fwknopd's rules in an anchor of their own, loaded whole.

As fwknopd's pf build does (server-config.md §2.5, §4.7), the rules live in
the anchor ``PF_ANCHOR_NAME`` (``fwknop``), which pf.conf must reference
(``anchor "fwknop"``); start-up checks that with ``pfctl -s Anchor``. pf
cannot add one rule to an anchor, so every change reads the anchor
(``pfctl -a ANCHOR -s rules``), edits the text and loads all of it back
with ``pfctl -a ANCHOR -f -``, the rules on the command's standard input
(the runner's ``stdin``; no shell, no pipe). When nothing is left the
anchor is flushed (``pfctl -a ANCHOR -F all``), as it is at start and exit.

A rule is fwknopd's template word for word, the protocol as its number:
``pass in quick proto 6 from SRC to any port 22 keep state label _exp_EXP``.
pfctl prints rules back in its own words (``proto tcp``, ``port = 22``,
``flags S/SA``, the label quoted); those are read back and kept as printed.

fwknopd scans the anchor every ``PF_EXPIRE_INTERVAL`` seconds; we close each
rule when it is due (the daemon's timer), and the periodic housekeeping also
removes any ``_exp_`` rule in the anchor whose time has passed, whoever made
it. pfctl does not run on Linux: these argv lists are pinned by tests only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ..config import ServerConfig
from ..vocab import PROTO_NUMBERS
from .base import Firewall, FirewallError, Opening, OpeningKey, listed_opening
from .runner import CommandRunner, RunsCommands, Tools

__all__ = ["Pf", "PfRules", "anchor_linked", "parse_pf_rule"]

log = logging.getLogger("fwknop_server.firewall")

_RULE = re.compile(
    r"^pass\s.*?\bproto\s+(?P<proto>\w+)\s+from\s+(?P<src>\S+)\s+to\s+(?P<dst>\S+)"
    r"\s+port\s+(?:=\s*)?(?P<port>\d+)\b.*?\blabel\s+\"?_exp_(?P<exp>\d+)\"?"
)


class PfRules:
    """Pure argv and rule-text builders for one anchor (``PF_ANCHOR_NAME``)."""

    def __init__(self, exe: str, anchor: str) -> None:
        self.exe = exe
        self.anchor = anchor

    def rule(self, opening: Opening) -> str:
        """fwknopd's access rule, one line of the anchor."""
        dst = "any" if opening.destination is None else str(opening.destination)
        return (
            f"pass in quick proto {PROTO_NUMBERS[opening.proto]} from {opening.source} "
            f"to {dst} port {opening.port} keep state label _exp_{opening.expires}"
        )

    def show_anchors(self) -> list[str]:
        """The anchors of the main ruleset (is ours referenced?)."""
        return [self.exe, "-s", "Anchor"]

    def show_rules(self) -> list[str]:
        """The rules in our anchor, one per line."""
        return [self.exe, "-a", self.anchor, "-s", "rules"]

    def load(self) -> list[str]:
        """Replace our anchor's rules with the text given on standard input."""
        return [self.exe, "-a", self.anchor, "-f", "-"]

    def flush(self) -> list[str]:
        """Empty our anchor."""
        return [self.exe, "-a", self.anchor, "-F", "all"]


def anchor_linked(listing: str, anchor: str) -> bool:
    """Whether ``pfctl -s Anchor`` output lists ``anchor``."""
    return any(line.strip() == anchor for line in listing.splitlines())


def parse_pf_rule(line: str) -> tuple[OpeningKey, int] | None:
    """A rule of ours as pfctl prints it (or as we wrote it): (source, proto, port), expiry."""
    return listed_opening(_RULE.match(line.strip()))


class Pf(Firewall, RunsCommands):
    """The pf backend (``FIREWALL_TYPE pf``): one anchor, reloaded whole on every change."""

    name = "pf"
    default_exe = "/sbin/pfctl"

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> Pf:
        """``PF_ANCHOR_NAME`` (fwknopd's pf build has no FLUSH_*: start and exit empty it)."""
        return cls(tools.run, PfRules(config.firewall_exe(cls.default_exe),
                                      config.required("PF_ANCHOR_NAME")))  # fmt: skip

    def __init__(
        self,
        run: CommandRunner,
        rules: PfRules,
        *,
        flush_at_init: bool = True,
        flush_at_exit: bool = True,
    ) -> None:
        super().__init__(flush_at_init=flush_at_init, flush_at_exit=flush_at_exit)
        self._run = run
        self.rules = rules

    def start(self, now: float) -> None:
        """Refuse an anchor pf.conf does not reference (its rules would do nothing); flush it."""
        anchors = self._must(self.rules.show_anchors())
        if not anchor_linked(anchors, self.rules.anchor):
            raise FirewallError(
                f"the pf anchor {self.rules.anchor!r} is not referenced from the main ruleset: "
                f'add anchor "{self.rules.anchor}" to pf.conf (or set PF_ANCHOR_NAME)'
            )
        if self.flush_at_init:
            self.flush()

    def _lines(self) -> list[str]:
        return [line for line in self._must(self.rules.show_rules()).splitlines() if line.strip()]

    def _load(self, lines: list[str]) -> None:
        if lines:
            self._must(self.rules.load(), stdin="\n".join(lines) + "\n")
        else:
            self._must(self.rules.flush())

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        replaced = {current.key for _opening, current in wanted if current is not None}
        lines = [line for line in self._lines() if _key(line) not in replaced]
        self._load([*lines, *(self.rules.rule(opening) for opening, _current in wanted)])
        for opening, _current in wanted:
            log.info(
                "Added rule to pf anchor %s for %s -> %s %s/%d, expires at %d",
                self.rules.anchor, opening.source, opening.destination or "any",
                opening.proto, opening.port, opening.expires,
            )  # fmt: skip

    def _close(self, due: Iterable[Opening]) -> None:
        closing = {opening.key: opening.expires for opening in due}
        kept = []
        for line in self._lines():
            parsed = parse_pf_rule(line)
            if parsed is not None and parsed[1] <= closing.get(parsed[0], -1):
                log.info("Deleting rule with expire time of %d.", parsed[1])
                continue
            kept.append(line)
        self._load(kept)

    def housekeeping(self, now: float) -> None:
        """Remove every ``_exp_`` rule in the anchor whose time has passed, ours or not."""
        lines = self._lines()
        kept = [line for line in lines if (rule := parse_pf_rule(line)) is None or rule[1] > now]
        if len(kept) != len(lines):
            self._load(kept)
            for opening in [o for o in self.open.values() if o.expires <= now]:
                self.open.pop(opening.key, None)

    def flush(self) -> None:
        """Empty the anchor (``pfctl -a ANCHOR -F all``)."""
        self._must(self.rules.flush())
        self.open.clear()

    def listing(self) -> str:
        """The anchor's rules (``pfctl -a ANCHOR -s rules``)."""
        status, out, err = self._run(self.rules.show_rules())
        return out if status == 0 else f"# pf anchor {self.rules.anchor}: {err.strip()}"

    def listing_all(self) -> str:
        """``--fw-list-all``: fwknopd's pf build lists its anchor there too, with its headers."""
        return (
            f"Listing fwknopd pf rules...\n\nActive Rules in PF anchor '{self.rules.anchor}':\n"
            + self.listing()
        )


def _key(line: str) -> OpeningKey | None:
    parsed = parse_pf_rule(line)
    return None if parsed is None else parsed[0]
