"""access.conf's knock-sequence stanzas (fwknop 1.x): one stanza's keywords to a knock rule.

A stanza is a sequence stanza when it says ``ENCRYPT_SEQUENCE`` (a bare
flag, or ``DATA_COLLECT_MODE: ENCRYPT_SEQUENCE``) or ``SHARED_SEQUENCE``
(its steps; ``DATA_COLLECT_MODE: SHARED_SEQUENCE`` is accepted too, which
1.x refused). ``DATA_COLLECT_MODE`` ``PCAP``, ``FILE_PCAP`` and ``ULOG_PCAP``
(or the bare names) mark an SPA stanza, as no keyword at all does: the
capture method is fwknopd.conf's, for every stanza. The stanza reader
(``access.py``) asks :func:`stanza_kind` and hands a sequence stanza here;
each keyword's value parser lives with the rule it fills
(``knock/rules.py``), so this module only maps names to them and reports
each problem at the line of its keyword.

Stricter than 1.9.12, each on purpose (a 1.x file that relied on the
looser rule is refused at load with the line and the reason, never run
differently than written):

* a keyword that means nothing for the stanza's kind (``PORT_OFFSET`` in a
  shared sequence, ``MIN_TIME_DIFF`` in an encrypted one, an HMAC key or
  GnuPG setting in either) is an error, not ignored;
* ``REQUIRE_USERNAME`` in a shared sequence is an error (1.x ignored it:
  a shared sequence carries no user name), and so is ``REQUIRE_OS`` for a
  shared sequence without a tcp step (nothing to fingerprint);
* ``REQUIRE_SOURCE_ADDRESS`` takes ``Y``/``N`` (and 1.x's ``ANY``, which
  1.x read as yes); 1.x's network-list form is refused by name
  (``KNOCK_ALLOW_IP`` says where an allow IP may point instead).

A rule's name, which keeps its ``KNOCK_LIMIT`` counts and its sequences in
progress across a SIGHUP, is the stanza's ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fwknop_core import (
    DEFAULT_KNOCK_OFFSET,
    KNOCK_PROTOCOLS,
    KnockKey,
    UsageError,
    parse_shared_sequence,
)

from .confsyntax import Setting, is_yes
from .knock import (
    DEFAULT_FW_ACCESS_TIMEOUT,
    DEFAULT_KNOCK_INTERVAL,
    EncryptedRule,
    OsRequirement,
    Rule,
    SharedRule,
    parse_knock_limit,
    parse_open_ports,
    parse_port_offset,
    parse_seconds,
    parse_usernames,
)
from .knock.rules import Network

__all__ = [
    "BARE_FLAGS",
    "ENCRYPTED",
    "SEQUENCE_NAMES",
    "SHARED",
    "SPA",
    "SequenceStanza",
    "build_sequence",
    "misplaced",
    "stanza_kind",
]

SPA, ENCRYPTED, SHARED = "spa", "encrypted", "shared"
_MODES = {
    "PCAP": SPA, "FILE_PCAP": SPA, "ULOG_PCAP": SPA, "SPA": SPA,
    "ENCRYPT_SEQUENCE": ENCRYPTED, "SHARED_SEQUENCE": SHARED,
}  # fmt: skip
# fwknop 1.x's booleans, which a bare ``NAME;`` sets (legacy-knock.md §7.1); any other
# name alone is an invalid line, so ``HMAC_KEY_BASE64;`` never loads a stanza without its key
BARE_FLAGS = frozenset(
    {
        "ENCRYPT_SEQUENCE", "PCAP", "FILE_PCAP", "ULOG_PCAP", "PERMIT_CLIENT_PORTS",
        "REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE", "ENABLE_CMD_EXEC", "ENABLE_OUTPUT_ACCESS",
        "ENABLE_FORWARD_ACCESS", "ENABLE_EXTERNAL_CMDS", "DISABLE_FW_ACCESS", "GPG_USE_OPTIONS",
        "GPG_NO_OPTIONS", "GPG_NO_REQUIRE_PREFIX",
    }
)  # fmt: skip
# names only a sequence stanza takes (an SPA stanza with one is refused)
SEQUENCE_NAMES = frozenset(
    {
        "ENCRYPT_SEQUENCE", "SHARED_SEQUENCE", "PORT_OFFSET", "PERMIT_CLIENT_PORTS",
        "KNOCK_ALLOW_IP", "KNOCK_INTERVAL", "KNOCK_LIMIT", "MIN_TIME_DIFF", "MAX_TIME_DIFF",
    }
)  # fmt: skip
# every name a sequence stanza may hold, by kind
_COMMON = frozenset(
    {
        "SOURCE", "DATA_COLLECT_MODE", "OPEN_PORTS", "REQUIRE_OS", "REQUIRE_OS_REGEX",
        "KNOCK_INTERVAL", "KNOCK_LIMIT", "FW_ACCESS_TIMEOUT", "MAX_ACCESS_TIMEOUT", "PCAP",
    }
)  # fmt: skip
_ALLOWED = {
    ENCRYPTED: _COMMON | {
        "ENCRYPT_SEQUENCE", "KEY", "PORT_OFFSET", "PERMIT_CLIENT_PORTS", "REQUIRE_USERNAME",
        "REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE", "KNOCK_ALLOW_IP",
    },
    SHARED: _COMMON | {"SHARED_SEQUENCE", "MIN_TIME_DIFF", "MAX_TIME_DIFF"},
}  # fmt: skip
_TIMEOUTS = ("FW_ACCESS_TIMEOUT", "MAX_ACCESS_TIMEOUT")  # the second: 1.x's alias
_MAX_TIMEOUT = 8388608


class Reader(Protocol):
    """What of the stanza reader (``access._StanzaReader``) a sequence stanza needs."""

    @property
    def s(self) -> dict[str, Setting]:
        """The stanza's settings by name (the last of each name)."""
        ...

    def bad(self, name: str, message: str) -> None:
        """A problem at the line of ``name``."""
        ...

    def value(self, name: str) -> str | None:
        """``name``'s value, if set."""
        ...

    def networks(self, name: str) -> tuple[Network, ...] | None:
        """``name``'s networks (a problem reported if bad)."""
        ...

    def key_text(self, name: str) -> str | None:
        """A key's value (``__CHANGEME__`` reported)."""
        ...

    def problem_count(self) -> int:
        """How many problems have been reported so far (this stanza's and before)."""
        ...


@dataclass(frozen=True, slots=True, repr=False)
class SequenceStanza:
    """A knock-sequence stanza: its place in the files and its rule."""

    number: int  # 1-based among all stanzas, as fwknopd's "stanza #N"
    path: Path
    line: int
    source_text: str
    rule: Rule

    def __repr__(self) -> str:
        return f"SequenceStanza(#{self.number} {self.path}:{self.line} {self.rule!r})"

    @property
    def kind(self) -> str:
        """``encrypted`` or ``shared``."""
        return ENCRYPTED if isinstance(self.rule, EncryptedRule) else SHARED


def misplaced(kind: str, names: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(name, problem) for each of these (known) names that a ``kind`` stanza does not take."""
    what = "an encrypted" if kind == ENCRYPTED else "a shared"
    for name in names:
        if name not in _ALLOWED[kind]:
            yield name, f"{name} does not apply to {what} sequence stanza"


def _flag(setting: Setting) -> bool:
    """A 1.x flag: a bare ``NAME;`` is yes, as a value starting with Y is."""
    return setting.value == "" or is_yes(setting.value)


def stanza_kind(r: Reader) -> str | None:
    """SPA, ENCRYPTED or SHARED, from the mode keywords; None (a problem reported) if they clash."""
    said: list[tuple[str, str]] = []  # (kind, the name that said it)
    mode = r.s.get("DATA_COLLECT_MODE")
    if mode is not None:
        kind = _MODES.get(mode.value.upper())
        if kind is None:
            r.bad(
                "DATA_COLLECT_MODE",
                f"DATA_COLLECT_MODE {mode.value!r} is not PCAP, FILE_PCAP, ULOG_PCAP (an SPA "
                "stanza), ENCRYPT_SEQUENCE or SHARED_SEQUENCE",
            )
            return None
        said.append((kind, "DATA_COLLECT_MODE"))
    for name in ("PCAP", "FILE_PCAP", "ULOG_PCAP"):
        if name in r.s:
            said.append((SPA, name))
    if "ENCRYPT_SEQUENCE" in r.s and _flag(r.s["ENCRYPT_SEQUENCE"]):
        said.append((ENCRYPTED, "ENCRYPT_SEQUENCE"))
    if "SHARED_SEQUENCE" in r.s:
        said.append((SHARED, "SHARED_SEQUENCE"))
    kinds = {kind for kind, _name in said}
    if len(kinds) > 1:
        last = max(said, key=lambda item: r.s[item[1]].line)[1]
        names = " and ".join(sorted({name for _kind, name in said}))
        r.bad(last, f"{names} say different things: one stanza is one kind")
        return None
    return kinds.pop() if kinds else SPA


def build_sequence(
    number: int, r: Reader, kind: str, where: tuple[Path, int], warnings: list[str] | None
) -> SequenceStanza | None:
    """The stanza (at ``where``) as a rule of ``kind``; None when a problem was reported."""
    path, line = where
    before = r.problem_count()
    source = _source(r)
    interval = _value(r, "KNOCK_INTERVAL", lambda v: parse_seconds("KNOCK_INTERVAL", v))
    os_name = _os_name(r)
    common: dict[str, object] = {
        "name": f"{path}:{line}",
        "source": source,
        "open_ports": _value(r, "OPEN_PORTS", parse_open_ports) or frozenset(),
        "require_os": None if os_name is None else _value(r, os_name, lambda _v: _os(r)),
        "knock_interval": DEFAULT_KNOCK_INTERVAL if interval is None else interval,
        "knock_limit": _value(r, "KNOCK_LIMIT", parse_knock_limit),
        "fw_access_timeout": _timeout(r),
    }
    fields = _encrypted(r) if kind == ENCRYPTED else _shared(r)
    if fields is None or source is None or r.problem_count() != before:
        return None  # a rule made of what is left would only add problems that are not there
    try:
        if kind == ENCRYPTED:
            rule: Rule = EncryptedRule(**common, **fields)  # type: ignore[arg-type]
        else:
            rule = SharedRule(**common, **fields)  # type: ignore[arg-type]
    except ValueError as exc:
        # a rule checks itself; its message begins with the keyword at fault
        message = str(exc)
        name = message.split(" ", 1)[0]
        r.bad(name if name in r.s else "SOURCE", message)
        return None
    if warnings is not None and rule.knock_limit == 0:
        limit = r.s["KNOCK_LIMIT"]
        warnings.append(f"{limit.path}:{limit.line}: KNOCK_LIMIT 0: this stanza grants nothing")
    return SequenceStanza(number, path, line, r.value("SOURCE") or "", rule)


def _value(r: Reader, name: str, parse: object) -> object:
    """``parse(value)`` of ``name`` if set, None if not or bad (reported at its line)."""
    text = r.value(name)
    if text is None:
        return None
    try:
        return parse(text)  # type: ignore[operator]
    except (ValueError, UsageError) as exc:
        message = str(exc)
        r.bad(name, message if message.startswith(name) else f"{name}: {message}")
        return None


def _os_name(r: Reader) -> str | None:
    """The OS keyword a problem is reported at (only the regex can be bad), if any is set."""
    return next((n for n in ("REQUIRE_OS_REGEX", "REQUIRE_OS") if n in r.s), None)


def _os(r: Reader) -> OsRequirement | None:
    return OsRequirement.parse(r.value("REQUIRE_OS"), r.value("REQUIRE_OS_REGEX"))


def _source(r: Reader) -> tuple[Network, ...] | None:
    nets = r.networks("SOURCE")
    if nets is not None and not nets:
        r.bad("SOURCE", "SOURCE NONE: this stanza would match no address")
        return None
    return nets


def _timeout(r: Reader) -> int:
    name = next((n for n in _TIMEOUTS if n in r.s), None)
    if name is None:
        return DEFAULT_FW_ACCESS_TIMEOUT
    text = r.s[name].value
    if not text.isdigit() or not 1 <= int(text) <= _MAX_TIMEOUT:
        r.bad(
            name,
            f"{name} must be 1..{_MAX_TIMEOUT} seconds (fwknop 1.x took a missing or 0 value "
            "as 'never close')",
        )
        return DEFAULT_FW_ACCESS_TIMEOUT
    return int(text)


def _encrypted(r: Reader) -> dict[str, object] | None:
    text = r.key_text("KEY")
    key = None
    if text is not None:
        key = _value(r, "KEY", KnockKey.from_passphrase)
    elif "KEY" not in r.s:
        r.bad("SOURCE", "an encrypted sequence stanza needs KEY (the 1.x client's key)")
    require_source = False
    name = next((n for n in ("REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE") if n in r.s), None)
    if name is not None:
        value = r.s[name].value
        if value == "" or is_yes(value) or value.upper() == "ANY":
            require_source = True
        elif value[:1] not in ("N", "n"):
            r.bad(
                name,
                f"{name} takes Y or N here; fwknop 1.x's network list is not supported "
                "(KNOCK_ALLOW_IP names where an allow IP may point besides the knock source)",
            )
    permit = r.s.get("PERMIT_CLIENT_PORTS")
    offset = _value(r, "PORT_OFFSET", parse_port_offset)
    fields: dict[str, object] = {
        "key": key,
        "offset": DEFAULT_KNOCK_OFFSET if offset is None else offset,
        "require_usernames": _value(r, "REQUIRE_USERNAME", parse_usernames),
        "require_source_address": require_source,
        "allow_ip": r.networks("KNOCK_ALLOW_IP") or (),
        "permit_client_ports": permit is not None and _flag(permit),
    }
    return None if key is None else fields


def _shared(r: Reader) -> dict[str, object] | None:
    text = r.value("SHARED_SEQUENCE")
    if text is None:
        r.bad("DATA_COLLECT_MODE", "DATA_COLLECT_MODE SHARED_SEQUENCE needs SHARED_SEQUENCE steps")
        return None
    steps = _value(r, "SHARED_SEQUENCE", parse_shared_sequence)
    if steps is None:
        return None
    if ("REQUIRE_OS" in r.s or "REQUIRE_OS_REGEX" in r.s) and not any(
        step.proto == KNOCK_PROTOCOLS["tcp"]
        for step in steps  # type: ignore[attr-defined]
    ):
        name = "REQUIRE_OS" if "REQUIRE_OS" in r.s else "REQUIRE_OS_REGEX"
        r.bad(name, f"{name} needs a tcp step in SHARED_SEQUENCE: only TCP SYNs are fingerprinted")
    return {
        "steps": steps,
        "min_time_diff": _value(r, "MIN_TIME_DIFF", lambda v: parse_seconds("MIN_TIME_DIFF", v)),
        "max_time_diff": _value(r, "MAX_TIME_DIFF", lambda v: parse_seconds("MAX_TIME_DIFF", v)),
    }
