"""Passive OS fingerprinting of knocking SYNs: pf.os (fwknop 1.x) and p0f v3 signatures.

Both formats are read into signatures that match one :class:`SynFingerprint`
(legacy-knock.md §6):

* ``pf.os`` (``P0F_FILE`` of fwknop 1.x, OpenBSD's format): every signature
  is tried and every match is a guess, matched as 1.x does (§6.3), the OS
  string being the whole description (``Linux:2.4::Linux 2.4/2.6``) so old
  ``REQUIRE_OS`` values keep working. Lines with a ``T`` window are skipped,
  as 1.x skips them. Unlike 1.x, a line that is not a signature is an error
  naming the file and line, not silently dropped.
* p0f v3 (``p0f.fp``, Debian's ``p0f`` package ships ``/etc/p0f/p0f.fp``):
  the ``[tcp:request]`` section; one best match per SYN, as p0f reports it:
  the first exact specific (``s``) signature in file order, else the first
  exact generic (``g``) one, else the first fuzzy one (``df``/``id+`` gone,
  ``id-``/``ecn`` appeared, or the TTL more than ``max_hops`` below the
  signature's). A p0f guess answers to its full label
  (``g:unix:Linux:2.2.x-3.x``) and to ``name:flavor`` (``Linux:2.2.x-3.x``).

No match is an ordinary outcome: current systems match neither stock
database well (§6.6), so administrators add signatures, either lines
appended to ``pf.os`` or a p0f-format file of their own; :class:`OsDatabase`
takes any number of each, and their signatures are tried after the stock
ones in the order given.

``REQUIRE_OS`` / ``REQUIRE_OS_REGEX`` (:class:`OsRequirement`): the exact
string must equal one of a guess's names; the regex is a case-insensitive
``re.search`` over the same names (1.x never got it to work: its loader
parsed the keyword as ``REQUIRE_OS``). Where 1.x checked only ``REQUIRE_OS``
when both are set, both must pass here. Python's ``re`` replaces Perl's;
for the simple patterns these keywords hold (``linux``, ``bsd``) they agree.
Which SYNs are asked is the collector's business (the sequence's own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .wire import EOL, MSS, NOP, SACK, SOK, TS, WS, SynFingerprint

__all__ = [
    "DEFAULT_MAX_HOPS",
    "OsDatabase",
    "OsDatabaseError",
    "OsGuess",
    "OsRequirement",
    "P0fSignature",
    "PfOsSignature",
    "p0f_raw_signature",
    "parse_p0f",
    "parse_pf_os",
    "pf_os_observed",
]

DEFAULT_MAX_HOPS = 20  # fwknop 1.x's MAX_HOPS
_CACHE = 4096


class OsDatabaseError(ValueError):
    """A signature file line that cannot be read; names the file and line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class OsGuess:
    """One matching signature: what it says the host is."""

    database: str  # "pf.os" or "p0f"
    label: str  # pf.os: the OS string; p0f: name:flavor
    names: tuple[str, ...]  # what REQUIRE_OS may equal
    signature: str  # the signature as written in its file
    generic: bool = False
    fuzzy: bool = False

    def __str__(self) -> str:
        extra = " (generic)" if self.generic else ""
        extra += " (fuzzy)" if self.fuzzy else ""
        return f"{self.label}{extra}"


# -- pf.os ---------------------------------------------------------------------------

_PF_LINE = re.compile(r"([^:\s]+):([^:\s]+):([^:\s]+):([^:\s]+):([^:\s]*):\s*(\S.*?)\s*")
_PF_LETTERS = {"N": NOP, "M": MSS, "W": WS, "S": SOK, "T": TS}


def _num(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a number")
    return int(text)


def _pf_value(text: str, what: str) -> tuple[str, int]:
    """``*``, ``%n`` or a number as (form, value)."""
    if text == "*":
        return "*", 0
    if text.startswith("%"):
        n = _num(text[1:], what)
        if n == 0:
            raise ValueError(f"{what} %0 divides by zero")
        return "%", n
    return "=", _num(text, what)


@dataclass(frozen=True, slots=True)
class PfOsSignature:
    """One pf.os line: ``wwww:ttt:D:ss:OOO:`` and the OS string."""

    text: str
    os: str
    window: tuple[str, int]  # *, %, =, S
    ttl: int
    df: str  # "0", "1" or "*"
    size: tuple[str, int]
    options: tuple[tuple[str, str, int], ...]  # (letter, form, value) per item

    def matches(self, fp: SynFingerprint, max_hops: int) -> bool:
        """§6.3 of the spec, item by item."""
        form, n = self.size
        if (form == "%" and fp.ip_length % n) or (form == "=" and fp.ip_length != n):
            return False
        if self.df != "*" and (self.df == "1") != fp.df:
            return False
        if not self.ttl - max_hops < fp.ttl <= self.ttl:
            return False
        form, n = self.window
        opts = _pf_view(fp)
        if form == "%" and fp.window % n:
            return False
        if form == "=" and fp.window != n:
            return False
        if form == "S":
            first = opts[0] if opts else None
            if first is None or first[0] != MSS or fp.window != n * (first[1] or 0):
                return False
        for index, (letter, vform, value) in enumerate(self.options):
            kind = _PF_LETTERS.get(letter)
            if kind is None:
                continue  # ".", "E", "?n": not checked, as 1.x
            if index >= len(opts) or opts[index][0] != kind:
                return False
            got = opts[index][1]
            if kind in (MSS, WS):
                if vform == "=" and got != value:
                    return False
                if vform == "%" and (got or 0) % value:
                    return False
            if kind == TS and vform == "0" and got != 0:
                return False
        return True


def _pf_view(fp: SynFingerprint) -> list[tuple[int, int | None]]:
    """The options as 1.x saw them: EOL ends the list, kinds it did not know leave no entry."""
    if "bad" in fp.quirks:
        return []
    out: list[tuple[int, int | None]] = []
    for kind, value in fp.options:
        if kind == EOL:
            break
        if kind in (NOP, MSS, WS, SOK, TS):
            out.append((kind, value))
    return out


def _pf_options(text: str) -> tuple[tuple[str, str, int], ...]:
    items: list[tuple[str, str, int]] = []
    for item in text.split(",") if text else []:
        letter, rest = item[:1], item[1:]
        if letter in ("M", "W") and rest:
            form, value = _pf_value(rest, f"option {item}")
            items.append((letter, form, value))
        elif letter == "T" and rest == "0":
            items.append(("T", "0", 0))
        else:
            items.append((letter, "*", 0))
    return tuple(items)


def parse_pf_os(text: str, source: str = "pf.os") -> tuple[PfOsSignature, ...]:
    """The signatures of a pf.os file; ``OsDatabaseError`` names a bad line."""
    sigs: list[PfOsSignature] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _PF_LINE.fullmatch(line)
        if m is None:
            raise OsDatabaseError(source, number, "not wwww:ttt:D:ss:OOO: OS-description")
        win, ttl, df, size, opts, os_text = m.groups()
        if "T" in win:
            continue  # window as a multiple of the MTU: 1.x skips these lines
        try:
            if win.startswith("S"):
                window = ("S", _num(win[1:], "window"))
            else:
                window = _pf_value(win, "window")
            if df not in ("0", "1", "*"):
                raise ValueError(f"DF {df!r} is not 0, 1 or *")
            sig = PfOsSignature(
                text=":".join((win, ttl, df, size, opts)),
                os=os_text,
                window=window,
                ttl=_num(ttl, "TTL"),
                df=df,
                size=_pf_value(size, "size"),
                options=_pf_options(opts),
            )
        except ValueError as exc:
            raise OsDatabaseError(source, number, str(exc)) from None
        sigs.append(sig)
    return tuple(sigs)


def pf_os_observed(fp: SynFingerprint) -> str:
    """The SYN written as a pf.os signature (``S44:64:1:60:M1460,S,T,N,W10``) for admins."""
    opts = _pf_view(fp)
    mss = opts[0][1] if opts and opts[0][0] == MSS else None
    window = f"S{fp.window // mss}" if mss and fp.window % mss == 0 else str(fp.window)
    letters = {NOP: "N", MSS: "M", WS: "W", SOK: "S", TS: "T"}
    items = []
    for kind, value in opts:
        if kind in (MSS, WS):
            items.append(f"{letters[kind]}{value}")
        elif kind == TS and value == 0:
            items.append("T0")
        else:
            items.append(letters[kind])
    ttl = _initial_ttl(fp.ttl)
    return f"{window}:{ttl}:{int(fp.df)}:{fp.ip_length}:{','.join(items) or '.'}"


# -- p0f v3 -------------------------------------------------------------------------

_P0F_KIND = {"nop": NOP, "mss": MSS, "ws": WS, "sok": SOK, "sack": SACK, "ts": TS}
_P0F_NAME = {v: k for k, v in _P0F_KIND.items()}
# p0f's quirks, in the order p0f prints them
_QUIRK_ORDER = ("df", "id+", "id-", "ecn", "0+", "flow", "seq-", "ack+", "ack-", "uptr+",
                 "urgf+", "pushf+", "ts1-", "ts2+", "opt+", "exws", "bad")  # fmt: skip
_P0F_QUIRKS = frozenset(_QUIRK_ORDER)
_IPV4_ONLY = frozenset({"df", "id+", "id-", "0+"})


def _layout(fp: SynFingerprint) -> tuple[str, ...]:
    out = []
    for kind, value in fp.options:
        if kind == EOL:
            out.append(f"eol+{value}")
        else:
            out.append(_P0F_NAME.get(kind, f"?{kind}"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class P0fSignature:
    """One p0f v3 ``[tcp:request]`` signature and its label."""

    text: str
    label: str  # type:class:name:flavor
    generic: bool
    version: int | None
    ttl: int
    bad_ttl: bool
    olen: int
    mss: int | None
    window: tuple[str, int]  # *, =, %, mss, mtu
    scale: int | None
    layout: tuple[str, ...]
    quirks: frozenset[str]
    payload: str  # 0, + or *

    def compare(self, fp: SynFingerprint, max_hops: int) -> bool | None:
        """None: no match; False: exact; True: fuzzy."""
        if self.layout != _layout(fp):
            return None
        if self.version is not None and self.version != fp.version:
            return None
        if self.olen != fp.ip_options:
            return None
        mss = fp.mss
        if self.mss is not None and self.mss != mss:
            return None
        if self.scale is not None and self.scale != fp.wscale:
            return None
        if self.payload != "*" and (self.payload == "+") != fp.payload:
            return None
        form, n = self.window
        win = fp.window
        if form == "=" and win != n:
            return None
        if form == "%" and win % n:
            return None
        if form == "mss" and (not mss or win != mss * n):
            return None
        if form == "mtu" and (not mss or win != (mss + (40 if fp.version == 4 else 60)) * n):
            return None
        ignored = frozenset({"flow"}) if fp.version == 4 else _IPV4_ONLY
        mine, theirs = self.quirks - ignored, fp.quirks - ignored
        gone, new = mine - theirs, theirs - mine
        if gone - {"df", "id+"} or new - {"id-", "ecn"}:
            return None
        fuzzy = bool(gone or new)
        if self.bad_ttl:
            if self.ttl < fp.ttl:
                return None
        elif self.ttl < fp.ttl or self.ttl - fp.ttl >= max_hops:
            fuzzy = True
        return fuzzy

    def guess(self, fuzzy: bool) -> OsGuess:
        """This signature as a guess."""
        _kind, _cls, name, flavor = self.label.split(":", 3)
        short = f"{name}:{flavor}"
        return OsGuess("p0f", short, (self.label, short), self.text, self.generic, fuzzy)


def _p0f_window(text: str) -> tuple[str, int]:
    if text == "*":
        return "*", 0
    for prefix in ("mss*", "mtu*"):
        if text.startswith(prefix):
            return prefix[:3], _num(text[4:], "window multiplier")
    if text.startswith("%"):
        n = _num(text[1:], "window modulus")
        if n == 0:
            raise ValueError("window %0 divides by zero")
        return "%", n
    return "=", _num(text, "window")


def _p0f_sig(text: str, label: str) -> P0fSignature:
    parts = text.split(":")
    if len(parts) != 8:
        raise ValueError(
            "a TCP signature has 8 fields: ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass"
        )
    ver, ittl, olen, mss, win_scale, olayout, quirks, pclass = parts
    if ver not in ("4", "6", "*"):
        raise ValueError(f"version {ver!r} is not 4, 6 or *")
    bad_ttl = ittl.endswith("-")
    win, comma, scale = win_scale.partition(",")
    if not comma:
        raise ValueError(f"{win_scale!r} is not wsize,scale")
    layout = tuple(o for o in olayout.split(",") if o)
    for item in layout:
        if item not in _P0F_KIND and not re.fullmatch(r"eol\+\d+|\?\d+", item):
            raise ValueError(f"unknown option {item!r}")
    quirk_set = frozenset(q for q in quirks.split(",") if q)
    unknown = quirk_set - _P0F_QUIRKS
    if unknown:
        raise ValueError(f"unknown quirk {sorted(unknown)[0]!r}")
    if pclass not in ("0", "+", "*"):
        raise ValueError(f"payload class {pclass!r} is not 0, + or *")
    return P0fSignature(
        text=text,
        label=label,
        generic=label.startswith("g:"),
        version=None if ver == "*" else int(ver),
        ttl=_num(ittl.rstrip("-"), "initial TTL"),
        bad_ttl=bad_ttl,
        olen=_num(olen, "olen"),
        mss=None if mss == "*" else _num(mss, "MSS"),
        window=_p0f_window(win),
        scale=None if scale == "*" else _num(scale, "window scale"),
        layout=layout,
        quirks=quirk_set,
        payload=pclass,
    )


def parse_p0f(text: str, source: str = "p0f.fp") -> tuple[P0fSignature, ...]:
    """The ``[tcp:request]`` signatures of a p0f v3 file; ``OsDatabaseError`` names a bad line."""
    sigs: list[P0fSignature] = []
    section = ""
    label: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section, label = line[1:-1].strip(), None
            continue
        if section != "tcp:request":
            continue
        name, eq, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not eq:
            raise OsDatabaseError(source, number, "not 'name = value'")
        if name == "label":
            if len(value.split(":")) < 4 or value[:2] not in ("s:", "g:"):
                raise OsDatabaseError(source, number, "label is type:class:name:flavor")
            label = value
        elif name == "sig":
            if label is None:
                raise OsDatabaseError(source, number, "a sig line needs a label line before it")
            try:
                sigs.append(_p0f_sig(value, label))
            except ValueError as exc:
                raise OsDatabaseError(source, number, str(exc)) from None
        elif name not in ("sys", "classes", "ua_os"):
            raise OsDatabaseError(source, number, f"unknown directive {name!r}")
    return tuple(sigs)


def _initial_ttl(ttl: int) -> int:
    return next(t for t in (32, 64, 128, 255) if ttl <= t)


def p0f_raw_signature(fp: SynFingerprint) -> str:
    """The SYN as p0f prints it (``4:64+0:0:1460:mss*44,10:mss,sok,ts,nop,ws:df,id+:0``)."""
    guess = _initial_ttl(fp.ttl)
    mss = fp.mss
    if mss and fp.window % mss == 0:
        win = f"mss*{fp.window // mss}"
    elif mss and fp.window % (mss + 40) == 0:
        win = f"mtu*{fp.window // (mss + 40)}"
    else:
        win = str(fp.window)
    quirks = ",".join(q for q in _QUIRK_ORDER if q in fp.quirks)
    return (
        f"{fp.version}:{fp.ttl}+{guess - fp.ttl}:{fp.ip_options}:{mss if mss else '*'}:"
        f"{win},{fp.wscale}:{','.join(_layout(fp))}:{quirks}:{'+' if fp.payload else '0'}"
    )


# -- the database -------------------------------------------------------------------


@dataclass(frozen=True)
class OsDatabase:
    """pf.os and p0f signatures, stock first, administrators' after; matches are cached."""

    pf_os: tuple[PfOsSignature, ...] = ()
    p0f: tuple[P0fSignature, ...] = ()
    max_hops: int = DEFAULT_MAX_HOPS
    _cached: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_hops <= 255:
            raise ValueError(f"MAX_HOPS {self.max_hops} is outside 1..255")
        object.__setattr__(self, "_cached", lru_cache(maxsize=_CACHE)(self._guesses))

    @classmethod
    def from_texts(
        cls,
        pf_os: Iterable[tuple[str, str]] = (),
        p0f: Iterable[tuple[str, str]] = (),
        *,
        max_hops: int = DEFAULT_MAX_HOPS,
    ) -> OsDatabase:
        """From (source name, text) pairs of each format, in the order given."""
        pf = tuple(s for name, text in pf_os for s in parse_pf_os(text, name))
        p0 = tuple(s for name, text in p0f for s in parse_p0f(text, name))
        return cls(pf, p0, max_hops)

    def _guesses(self, fp: SynFingerprint) -> tuple[OsGuess, ...]:
        out = [
            OsGuess("pf.os", s.os, (s.os,), s.text)
            for s in self.pf_os
            if s.matches(fp, self.max_hops)
        ]
        generic: P0fSignature | None = None
        fuzzy: P0fSignature | None = None
        for sig in self.p0f:
            result = sig.compare(fp, self.max_hops)
            if result is None:
                continue
            if result:
                fuzzy = fuzzy or sig
            elif not sig.generic:
                return (*out, sig.guess(False))
            else:
                generic = generic or sig
        if generic is not None:
            out.append(generic.guess(False))
        elif fuzzy is not None:
            out.append(fuzzy.guess(True))
        return tuple(out)

    def guesses(self, fp: SynFingerprint) -> tuple[OsGuess, ...]:
        """Every pf.os match and p0f's best match; empty when nothing matches (normal)."""
        result: tuple[OsGuess, ...] = self._cached(fp)  # type: ignore[operator]
        return result


@dataclass(frozen=True, slots=True)
class OsRequirement:
    """``REQUIRE_OS`` (an exact OS string or p0f label) and/or ``REQUIRE_OS_REGEX``."""

    exact: str | None = None
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, exact: str | None, regex: str | None) -> OsRequirement | None:
        """From the keyword values (None when neither is set); ``ValueError`` for a bad regex."""
        if exact is None and regex is None:
            return None
        pattern = None
        if regex is not None:
            try:
                pattern = re.compile(regex, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"REQUIRE_OS_REGEX {regex!r} does not compile: {exc}") from None
        return cls(exact, pattern)

    def met_by(self, guesses: Sequence[OsGuess]) -> bool:
        """Whether one of these guesses satisfies the requirement."""
        names = [n for g in guesses for n in g.names]
        if self.exact is not None and self.exact not in names:
            return False
        return self.regex is None or any(self.regex.search(n) for n in names)

    def __str__(self) -> str:
        parts = []
        if self.exact is not None:
            parts.append(f"REQUIRE_OS {self.exact!r}")
        if self.regex is not None:
            parts.append(f"REQUIRE_OS_REGEX {self.regex.pattern!r}")
        return " and ".join(parts)
