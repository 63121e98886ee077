"""Passive OS fingerprinting: the recorded SYN gets the recorded pf.os and p0f v3 verdicts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fwknop_server.knock import (
    OsDatabase,
    OsDatabaseError,
    OsRequirement,
    SynFingerprint,
    p0f_raw_signature,
    parse_p0f,
    parse_pf_os,
    pf_os_observed,
)

from tests.helpers.legacy import LEGACY, observations, os_fingerprint, pcap_knocks

P0F_FP = Path("/etc/p0f/p0f.fp")  # Debian's p0f package (./dev APT_TEST)
CUSTOM = os_fingerprint()["client_syn"]["fwknop_1x_with_custom_line"]


def _recorded_syn() -> SynFingerprint:
    syn = pcap_knocks("pcap/enc-basic-root.pcap")[0].syn
    assert syn is not None
    return syn


def _stock_p0f() -> str:
    return P0F_FP.read_text()


def _sample_pf_os() -> str:
    return (LEGACY / "pf.os").read_text()


def _syn(  # a SYN as a fingerprint, for signatures we have no packet of
    window: int, ttl: int, length: int, options: tuple[tuple[int, int | None], ...],
    quirks: frozenset[str] = frozenset({"df", "id+"}),
) -> SynFingerprint:  # fmt: skip
    return SynFingerprint(4, ttl, "df" in quirks, length, 0, window, options, quirks)


def test_recorded_syn_prints_as_p0f_and_pf_os_did() -> None:
    want = os_fingerprint()["client_syn"]
    syn = _recorded_syn()
    assert p0f_raw_signature(syn) == want["p0f_v3_raw_sig"]
    assert pf_os_observed(syn) == want["pf_os_style_observed"]


def test_stock_p0f_database_gives_the_generic_linux_verdict() -> None:
    db = OsDatabase.from_texts(p0f=[(str(P0F_FP), _stock_p0f())])
    assert len(db.p0f) == 91  # the [tcp:request] signatures of p0f 3.09b
    (guess,) = db.guesses(_recorded_syn())
    assert guess.database == "p0f"
    assert guess.generic
    assert not guess.fuzzy
    assert guess.label == "Linux:2.2.x-3.x"
    assert guess.names == ("g:unix:Linux:2.2.x-3.x", "Linux:2.2.x-3.x")
    assert "'g:unix:Linux:2.2.x-3.x'" in os_fingerprint()["client_syn"]["p0f_v3_3_09b_verdict"]


def test_stock_pf_os_signatures_do_not_know_a_modern_linux() -> None:
    db = OsDatabase.from_texts(pf_os=[("pf.os", _sample_pf_os())])
    assert db.guesses(_recorded_syn()) == ()  # "no match" is the ordinary outcome


def test_an_added_pf_os_line_matches_as_in_1x() -> None:
    text = _sample_pf_os() + CUSTOM["line"] + "\n"
    db = OsDatabase.from_texts(pf_os=[("pf.os", text)])
    (guess,) = db.guesses(_recorded_syn())
    assert guess.label == CUSTOM["os_key"]
    assert guess.names == (CUSTOM["os_key"],)
    assert guess.signature == "S44:64:1:60:M*,S,T,N,W10"
    # the 1x daemon printed the same signature and OS for this host in --os mode
    printed = os_fingerprint()["fwknopd_os_mode_runs"]["custom-linux6-line"]
    assert re.search(r"S44:64:1:60:M\*,S,T,N,W10\s+Linux:6\.x::Linux 6\.x \(lk test\)", printed)


def test_an_administrators_p0f_file_is_tried_after_the_stock_one() -> None:
    mine = (
        "[tcp:request]\nlabel = s:unix:Linux:6.x\n"
        "sig = *:64:0:*:mss*44,10:mss,sok,ts,nop,ws:df,id+:0\n"
    )
    db = OsDatabase.from_texts(p0f=[("p0f.fp", _stock_p0f()), ("local.fp", mine)])
    (guess,) = db.guesses(_recorded_syn())
    assert (guess.label, guess.generic) == ("Linux:6.x", False)  # a specific match wins


# Hosts of the 1.x --os run over os_sample.pkts: a SYN that fits each one's first signature
# must get exactly the guesses 1.x printed for it from these lines.
M1460 = (2, 1460)
N, S = (1, None), (4, None)


@pytest.mark.parametrize(
    ("host", "syn"),
    [
        ("158.42.187.144", _syn(65535, 128, 48, (M1460, N, N, S))),
        ("213.248.54.69", _syn(57344, 64, 44, (M1460,))),
        ("195.116.91.33", _syn(8192, 128, 44, (M1460,))),
        ("61.221.206.182", _syn(4 * 1460, 64, 60, (M1460, S, (8, None), N, (3, 0)))),
        ("24.5.11.161", _syn(1000, 128, 64, (M1460, N, (3, 2), N, N, (8, 0), N, N, S))),
    ],
)
def test_sample_hosts_get_the_guesses_1x_printed(host: str, syn: SynFingerprint) -> None:
    printed = os_fingerprint()["fwknopd_os_mode_runs"]["os_sample.pkts"]
    block = printed.split(f"[+] {host}\n", 1)[1].split("[+]", 1)[0]
    want = sorted(re.split(r"\s{2,}", line.strip(), maxsplit=1)[1] for line in block.splitlines())
    db = OsDatabase.from_texts(pf_os=[("pf.os", _sample_pf_os())])
    assert sorted(g.label for g in db.guesses(syn)) == want


def test_pf_os_ttl_window_is_max_hops() -> None:
    line = "S4:64:1:60:M*,S,T,N,W0:\tLinux:2.4::Linux 2.4/2.6\n"
    far = _syn(4 * 1460, 40, 60, (M1460, S, (8, None), N, (3, 0)))
    assert OsDatabase.from_texts(pf_os=[("x", line)]).guesses(far) == ()
    assert len(OsDatabase.from_texts(pf_os=[("x", line)], max_hops=30).guesses(far)) == 1


def test_pf_os_lines_with_an_mtu_window_are_skipped_as_1x_does() -> None:
    assert not any("MTU window" in s.os for s in parse_pf_os(_sample_pf_os()))
    assert len(parse_pf_os(_sample_pf_os())) == 20


def test_p0f_fuzzy_match_when_df_is_gone() -> None:
    syn = _recorded_syn()
    no_df = SynFingerprint(4, 64, False, 60, 0, syn.window, syn.options, frozenset())
    db = OsDatabase.from_texts(p0f=[("p0f.fp", _stock_p0f())])
    (guess,) = db.guesses(no_df)
    assert guess.fuzzy
    assert guess.names[0].startswith("g:unix:Linux")


def test_p0f_ttl_below_the_window_is_fuzzy_and_bad_ttl_is_not() -> None:
    syn = _recorded_syn()
    far = SynFingerprint(4, 20, True, 60, 0, syn.window, syn.options, syn.quirks)
    sig = "[tcp:request]\nlabel = s:unix:Test:far\nsig = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0\n"
    (guess,) = OsDatabase.from_texts(p0f=[("t", sig)]).guesses(far)
    assert guess.fuzzy
    bad = sig.replace(":64:", ":64-:")
    (guess,) = OsDatabase.from_texts(p0f=[("t", bad)]).guesses(far)
    assert not guess.fuzzy


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[tcp:request]\nsig = *:64:0:*:*,*:mss:df:0\n", 2, "needs a label"),
        ("[tcp:request]\nlabel = s:unix:X:1\nsig = *:64:0:*:*,*:mss:zz:0\n", 3, "unknown quirk"),
        ("[tcp:request]\nlabel = s:unix:X:1\nsig = *:64:0:*:*:mss:df:0\n", 3, "wsize,scale"),
        ("[tcp:request]\nlabel = s:unix:X:1\nsig = *:64:0\n", 3, "ver:ittl"),
        ("[tcp:request]\nlabel = x\n", 2, "type:class"),
        ("[tcp:request]\nlabel = s:unix:X:1\nsig = *:64:0:*:*,*:mss,foo:df:0\n", 3, "'foo'"),
    ],
)
def test_p0f_errors_name_the_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(OsDatabaseError, match=message) as info:
        parse_p0f(text, "local.fp")
    assert (info.value.source, info.value.line) == ("local.fp", line)
    assert str(info.value).startswith(f"local.fp:{line}: ")


@pytest.mark.parametrize(
    "line",
    ["S4:64:1:60\tLinux", "S4:x:1:60:M*:\tLinux", "S4:64:2:60:M*:\tLinux", "%0:64:1:60:.:\tX"],
)
def test_pf_os_errors_name_the_file_and_line(line: str) -> None:
    with pytest.raises(OsDatabaseError) as info:
        parse_pf_os(f"# comment\n{line}\n", "/etc/fwknop/pf.os")
    assert (info.value.source, info.value.line) == ("/etc/fwknop/pf.os", 2)


def test_other_p0f_sections_are_ignored() -> None:
    assert parse_p0f(_stock_p0f().split("[tcp:request]")[0]) == ()
    sigs = parse_p0f(_stock_p0f())
    assert all(s.label[:2] in ("s:", "g:") for s in sigs)


def test_require_os_exact_and_regex() -> None:
    db = OsDatabase.from_texts(pf_os=[("pf.os", CUSTOM["line"])], p0f=[("p0f.fp", _stock_p0f())])
    guesses = db.guesses(_recorded_syn())
    assert [g.database for g in guesses] == ["pf.os", "p0f"]

    def met(exact: str | None, regex: str | None) -> bool:
        need = OsRequirement.parse(exact, regex)
        assert need is not None
        return need.met_by(guesses)

    assert met(CUSTOM["os_key"], None)
    assert met("Linux:2.2.x-3.x", None)
    assert met("g:unix:Linux:2.2.x-3.x", None)
    assert not met("Linux:6.x", None)  # exact, not a prefix
    assert not met("linux:6.x::Linux 6.x (lk test)", None)  # exact is case-sensitive
    assert met(None, "linux")  # the 1.x parse bug made this fail (enc-require-os-regex-parse-bug)
    assert met(None, r"6\.X")
    assert not met(None, "bsd")
    assert not met(CUSTOM["os_key"], "bsd")  # both set: both must pass
    assert not OsRequirement(None, re.compile("linux")).met_by(())
    assert OsRequirement.parse(None, None) is None
    with pytest.raises(ValueError, match="does not compile"):
        OsRequirement.parse(None, "*bsd")  # the man page's example is not a regex


def test_1x_recorded_regex_bug_scenario_is_what_we_fix() -> None:
    (obs,) = [o for o in observations() if o["id"] == "enc-require-os-regex-parse-bug"]
    assert "expected: _REGEX: linux" in "\n".join(obs["server_log"])


def test_matches_are_cached_per_fingerprint() -> None:
    db = OsDatabase.from_texts(p0f=[("p0f.fp", _stock_p0f())])
    syn = _recorded_syn()
    assert db.guesses(syn) is db.guesses(_recorded_syn())
