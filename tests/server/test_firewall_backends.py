"""The exact argv (and pf's rule text) of the firewalld, pf and ipfw backends (no root needed).

Each is compared word for word with fwknopd's templates (server-config.md
§4.5-4.7); fake runners answer like the real tools would, enough for each
backend's logic. The firewalld backend is also proven on a real kernel
(test_firewalld_e2e.py); pfctl and ipfw do not run on Linux.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.config import ChainSpec, load_server_config
from fwknop_server.errors import ConfigError
from fwknop_server.firewall import FirewallError, Opening, make_firewall
from fwknop_server.firewall.firewalld import Firewalld, FirewalldRules
from fwknop_server.firewall.ipfw import Ipfw, IpfwRules, dynamic_rules, parse_ipfw_rule
from fwknop_server.firewall.iptrules import IptablesRules
from fwknop_server.firewall.pf import Pf, PfRules, anchor_linked, parse_pf_rule
from fwknop_server.firewall.runner import SubprocessRunner
from fwknop_server.vocab import Grant

from fwknop_core import MessageType

SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
INPUT = ChainSpec("ACCEPT", "filter", "INPUT", 1, "FWKNOP_INPUT", 1)
FWCMD = "/usr/bin/firewall-cmd"
PFCTL = "/sbin/pfctl"
IPFW = "/sbin/ipfw"
EXP = 1795268159


def _grant(*ports: tuple[str, int], expires: int = 1030, src: Any = SRC) -> Grant:
    return Grant(src, None, ports, 30, expires, 1, "u", MessageType.ACCESS)


class Recorder:
    """A ``CommandRunner`` that records (argv, stdin) and succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        self.calls.append((list(argv), stdin))
        return 0, "", ""


# -- the runner ---------------------------------------------------------------------


def test_the_runner_gives_stdin_to_the_command_and_no_shell() -> None:
    status, out, _err = SubprocessRunner()(["cat"], stdin="pass in quick $(id)\n")
    assert (status, out) == (0, "pass in quick $(id)\n")  # literally: nothing was expanded
    assert SubprocessRunner()(["true"]) == (0, "", "")


# -- firewalld ---------------------------------------------------------------------

FWD_ADD = [
    FWCMD, "--direct", "--passthrough", "ipv4", "-t", "filter", "-A", "FWKNOP_INPUT",
    "-p", "tcp", "-s", "198.18.0.2", "-d", "0.0.0.0/0", "--dport", "22",
    "-m", "comment", "--comment", f"_exp_{EXP}", "-j", "ACCEPT",
]  # fmt: skip


def test_firewalld_argv_are_the_iptables_ones_behind_the_passthrough() -> None:
    rules = FirewalldRules(FWCMD, INPUT)
    opening = Opening(SRC, "tcp", 22, EXP)
    assert rules.add(opening) == FWD_ADD
    prefix = [FWCMD, "--direct", "--passthrough", "ipv4", "-t", "filter"]
    assert rules.new_chain() == [*prefix, "-N", "FWKNOP_INPUT"]
    assert rules.check_jump() == [*prefix, "-C", "INPUT", "-j", "FWKNOP_INPUT"]
    assert rules.add_jump() == [*prefix, "-I", "INPUT", "1", "-j", "FWKNOP_INPUT"]
    assert rules.delete_jump() == [*prefix, "-D", "INPUT", "-j", "FWKNOP_INPUT"]
    assert rules.flush_chain() == [*prefix, "-F", "FWKNOP_INPUT"]
    assert rules.delete_chain() == [*prefix, "-X", "FWKNOP_INPUT"]
    assert rules.list_chain() == [*prefix, "-S", "FWKNOP_INPUT"]
    assert rules.list_from_chain() == [*prefix, "-S", "INPUT"]
    # every command: iptables' own arguments (without its -w) behind the passthrough
    ipt = IptablesRules("/usr/sbin/iptables", INPUT, prepend=True)
    fwd = FirewalldRules(FWCMD, INPUT, prepend=True)
    with_destination = Opening(SRC, "udp", 53, EXP, DST)
    for build in ("new_chain", "check_jump", "add_jump", "delete_jump", "flush_chain",
                  "delete_chain", "list_chain"):  # fmt: skip
        assert getattr(fwd, build)()[4:] == getattr(ipt, build)()[2:], build
    assert fwd.add(with_destination)[4:] == ipt.add(with_destination)[2:]
    assert fwd.add(with_destination)[6:9] == ["-I", "FWKNOP_INPUT", "-p"]
    assert "198.18.0.1" in fwd.add(with_destination)


class FakeFirewallCmd:
    """Answers ``firewall-cmd --direct --passthrough ipv4`` like firewalld 1.3 on iptables."""

    def __init__(self, *, backend: str = "iptables", listing: str = "") -> None:
        self.backend = backend
        self.chain = False
        self.jumps = 0
        self.listing = listing
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        args = list(argv)
        self.calls.append(args)
        assert args[:6] == [FWCMD, "--direct", "--passthrough", "ipv4", "-t", "filter"], args
        verb, chain = args[6], args[7]
        failed = (13, "", "Error: COMMAND_FAILED: ...")
        if verb == "-S" and chain == "INPUT":
            firewalld = "-A INPUT -j INPUT_direct\n" if self.backend == "iptables" else ""
            jump = "-A INPUT -j FWKNOP_INPUT\n" * self.jumps
            return 0, f"-P INPUT ACCEPT\n{jump}{firewalld}\nsuccess\n", ""
        if verb == "-S":
            return (0, f"-N FWKNOP_INPUT\n{self.listing}\nsuccess\n", "") if self.chain else failed
        if verb == "-L":  # only as --fw-list asks: -L CHAIN --line-numbers -n
            assert args[8:] == ["--line-numbers", "-n"], args
            return (0, f"{LISTED}\nsuccess\n", "") if self.chain else failed
        if verb == "-N":
            self.chain = True
        elif verb == "-C":
            return (0, "success\n", "") if self.jumps else failed
        elif verb == "-I" and chain == "INPUT":
            self.jumps += 1
        elif verb == "-D" and chain == "INPUT":
            if not self.jumps:
                return failed
            self.jumps -= 1
        elif verb in ("-F", "-X"):
            if not self.chain:
                return failed
            self.chain = verb == "-F"
        return 0, "success\n", ""


def _fwd_verbs(fake: FakeFirewallCmd) -> list[str]:
    return [" ".join(c[6:8]) for c in fake.calls]


def test_firewalld_start_grant_expire_exit(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeFirewallCmd()
    fake.chain, fake.jumps = True, 1  # left by an earlier run
    fw = Firewalld(fake, FirewalldRules(FWCMD, INPUT))
    with caplog.at_level(logging.WARNING, "fwknop_server.firewall"):
        fw.start(now=1000)
    assert _fwd_verbs(fake) == [
        "-D INPUT", "-D INPUT", "-F FWKNOP_INPUT", "-X FWKNOP_INPUT",  # FLUSH_FIREWD_AT_INIT
        "-S FWKNOP_INPUT", "-N FWKNOP_INPUT", "-C INPUT", "-I INPUT",  # chain and jump
        "-S INPUT",  # is firewalld on its iptables backend?
    ]  # fmt: skip
    assert caplog.records == []
    fake.calls.clear()
    fw.grant(_grant(("tcp", 22), expires=EXP), now=1000)
    assert fake.calls == [FWD_ADD]
    fw.grant(_grant(("tcp", 22), expires=EXP + 60), now=1010)
    assert [(c[6], c[-3]) for c in fake.calls[1:]] == [
        ("-A", f"_exp_{EXP + 60}"),
        ("-D", f"_exp_{EXP}"),  # the longer rule in, then the shorter one out
    ]
    assert fake.calls[2][:8] == [*FWD_ADD[:6], "-D", "FWKNOP_INPUT"]
    fake.calls.clear()
    assert [o.port for o in fw.expire(now=EXP + 60)] == [22]
    assert fake.calls == [[*FWD_ADD[:6], "-D", "FWKNOP_INPUT", *FWD_ADD[8:-3],
                           f"_exp_{EXP + 60}", "-j", "ACCEPT"]]  # fmt: skip
    fake.calls.clear()
    fw.stop()  # FLUSH_FIREWD_AT_EXIT
    assert _fwd_verbs(fake) == ["-D INPUT", "-D INPUT", "-F FWKNOP_INPUT", "-X FWKNOP_INPUT"]
    assert not fake.chain and not fake.jumps


def test_firewalld_on_its_nftables_backend_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fw = Firewalld(FakeFirewallCmd(backend="nftables"), FirewalldRules(FWCMD, INPUT))
    with caplog.at_level(logging.WARNING, "fwknop_server.firewall"):
        fw.start(now=1000)
    (record,) = caplog.records
    assert "no INPUT_direct jump" in record.getMessage()
    assert "FirewallBackend=iptables" in record.getMessage()


def test_firewalld_restart_adopts_rules_and_lists_without_success() -> None:
    rule = (
        "-A FWKNOP_INPUT -s 198.18.0.2/32 -p tcp -m tcp --dport 22 -m comment "
        "--comment _exp_2000 -j ACCEPT"
    )
    fake = FakeFirewallCmd(listing=rule)
    fake.chain, fake.jumps = True, 1
    fw = Firewalld(fake, FirewalldRules(FWCMD, INPUT), flush_at_init=False)
    fw.start(now=1000)
    assert [(str(o.source), o.proto, o.port, o.expires) for o in fw.open.values()] == [
        ("198.18.0.2", "tcp", 22, 2000)
    ]
    assert "-N INPUT" not in _fwd_verbs(fake)
    assert fw.listing() == f"Listing rules in fwknopd firewalld chains...\n\n{LISTED}"


# a chain as ``iptables -L FWKNOP_INPUT --line-numbers -n`` shows it (what fwknopd prints)
LISTED = (
    "Chain FWKNOP_INPUT (1 references)\n"
    "num  target     prot opt source               destination         \n"
    "1    ACCEPT     6    --  198.18.0.2           0.0.0.0/0            tcp dpt:22 "
    "/* _exp_2000 */"
)


# -- pf ------------------------------------------------------------------------------

PF_RULE = f"pass in quick proto 6 from 198.18.0.2 to any port 22 keep state label _exp_{EXP}"
# the same rule as pfctl -s rules prints it back
PF_PRINTED = (
    "pass in quick proto tcp from 198.18.0.2 to any port = 22 flags S/SA keep state "
    f'label "_exp_{EXP}"'
)


def test_pf_rule_text_and_argv_follow_fwknopds_templates() -> None:
    rules = PfRules(PFCTL, "fwknop")
    assert rules.rule(Opening(SRC, "tcp", 22, EXP)) == PF_RULE
    assert rules.rule(Opening(SRC, "udp", 53, 7, DST)) == (
        "pass in quick proto 17 from 198.18.0.2 to 198.18.0.1 port 53 keep state label _exp_7"
    )
    assert rules.show_anchors() == [PFCTL, "-s", "Anchor"]
    assert rules.show_rules() == [PFCTL, "-a", "fwknop", "-s", "rules"]
    assert rules.load() == [PFCTL, "-a", "fwknop", "-f", "-"]
    assert rules.flush() == [PFCTL, "-a", "fwknop", "-F", "all"]


def test_pf_reads_its_rules_back_as_written_and_as_printed() -> None:
    key = (SRC, "tcp", 22)
    assert parse_pf_rule(PF_RULE) == (key, EXP)
    assert parse_pf_rule(PF_PRINTED) == (key, EXP)
    assert parse_pf_rule('pass in quick inet proto udp from 198.18.0.3 to 198.18.0.1 port = 53 '
                         'keep state label "_exp_5"') == ((SRC + 1, "udp", 53), 5)  # fmt: skip
    assert parse_pf_rule("pass in quick proto tcp from any to any port = 80") is None
    assert parse_pf_rule('block in quick proto tcp from 198.18.0.2 to any port 22 label "_exp_1"') \
        is None  # fmt: skip
    assert anchor_linked("  fwknop\n  other\n", "fwknop")
    assert not anchor_linked("  fwknop/sub\n", "fwknop")


class FakePfctl:
    """An anchor of pf as pfctl shows and loads it (rules printed back in pfctl's words)."""

    def __init__(self, anchors: str = "  fwknop\n") -> None:
        self.anchors = anchors
        self.rules: list[str] = []
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        args = list(argv)
        self.calls.append((args, stdin))
        if args[1:] == ["-s", "Anchor"]:
            return 0, self.anchors, ""
        assert args[1:3] == ["-a", "fwknop"], args
        if args[3:] == ["-s", "rules"]:
            return 0, "".join(f"{r}\n" for r in self.rules), ""
        if args[3:] == ["-F", "all"]:
            self.rules = []
            return 0, "", "rules cleared\n"
        assert args[3:] == ["-f", "-"] and stdin is not None and stdin.endswith("\n")
        self.rules = [_printed(line) for line in stdin.splitlines()]
        return 0, "", ""


def _printed(line: str) -> str:
    """What pfctl prints for a rule (ours as we wrote it, or one it printed before)."""
    line = line.replace("proto 6 ", "proto tcp ").replace("proto 17 ", "proto udp ")
    line = re.sub(r" port (\d)", r" port = \1", line)
    return re.sub(r" keep state label _exp_(\d+)$", r' flags S/SA keep state label "_exp_\1"', line)


def test_pf_start_checks_the_anchor_and_flushes_it() -> None:
    fake = FakePfctl()
    fake.rules = ["pass in quick proto tcp from 198.18.0.9 to any port = 22"]
    Pf(fake, PfRules(PFCTL, "fwknop")).start(now=1000)
    assert fake.calls == [([PFCTL, "-s", "Anchor"], None),
                          ([PFCTL, "-a", "fwknop", "-F", "all"], None)]  # fmt: skip
    assert fake.rules == []
    unlinked = FakePfctl(anchors="  other\n")
    with pytest.raises(FirewallError, match=re.escape('add anchor "fwknop" to pf.conf')):
        Pf(unlinked, PfRules(PFCTL, "fwknop")).start(now=1000)
    assert len(unlinked.calls) == 1  # nothing was changed


def test_pf_grant_reloads_the_whole_anchor_through_stdin() -> None:
    fake = FakePfctl()
    fw = Pf(fake, PfRules(PFCTL, "fwknop"))
    fw.start(now=1000)
    fake.rules = ["pass in quick proto tcp from 203.0.113.7 to any port = 443"]  # someone's
    fake.calls.clear()
    fw.grant(_grant(("tcp", 22), ("udp", 53), expires=EXP), now=1000)
    udp_rule = f"pass in quick proto 17 from 198.18.0.2 to any port 53 keep state label _exp_{EXP}"
    assert fake.calls == [
        ([PFCTL, "-a", "fwknop", "-s", "rules"], None),
        ([PFCTL, "-a", "fwknop", "-f", "-"],
         f"pass in quick proto tcp from 203.0.113.7 to any port = 443\n{PF_RULE}\n{udp_rule}\n"),
    ]  # fmt: skip
    # a longer knock for tcp/22: the printed old rule is replaced, the others stay as printed
    fake.calls.clear()
    fw.grant(_grant(("tcp", 22), expires=EXP + 60), now=1010)
    (_read, (argv, text)) = fake.calls
    assert argv == [PFCTL, "-a", "fwknop", "-f", "-"]
    assert text is not None
    assert text.splitlines() == [
        "pass in quick proto tcp from 203.0.113.7 to any port = 443",
        _printed(udp_rule),
        PF_RULE.replace(f"_exp_{EXP}", f"_exp_{EXP + 60}"),
    ]


def test_pf_expiry_reloads_without_the_rule_and_flushes_when_none_is_left() -> None:
    fake = FakePfctl()
    fw = Pf(fake, PfRules(PFCTL, "fwknop"))
    fw.start(now=1000)
    fw.grant(_grant(("tcp", 22), expires=1030), now=1000)
    fw.grant(_grant(("udp", 53), expires=1060), now=1000)
    fake.calls.clear()
    assert [o.port for o in fw.expire(now=1030)] == [22]
    assert [argv[3:] for argv, _ in fake.calls] == [["-s", "rules"], ["-f", "-"]]
    kept = "pass in quick proto 17 from 198.18.0.2 to any port 53 keep state label _exp_1060"
    assert fake.calls[1][1] == _printed(kept) + "\n"
    fake.calls.clear()
    assert [o.port for o in fw.expire(now=1060)] == [53]
    assert [argv[3:] for argv, _ in fake.calls] == [["-s", "rules"], ["-F", "all"]]
    fake.calls.clear()
    fw.stop()
    assert fake.calls == [([PFCTL, "-a", "fwknop", "-F", "all"], None)]


def test_pf_housekeeping_removes_anyones_expired_rules() -> None:
    fake = FakePfctl()
    fw = Pf(fake, PfRules(PFCTL, "fwknop"))
    fake.rules = [
        "pass in quick proto tcp from 198.18.0.7 to any port = 22 flags S/SA keep state "
        'label "_exp_900"',
        "pass in quick proto tcp from 198.18.0.8 to any port = 22 flags S/SA keep state "
        'label "_exp_2000"',
    ]
    fw.housekeeping(now=1000)
    assert fake.rules == [fake.calls[-1][1].strip()]  # type: ignore[union-attr]
    assert "198.18.0.8" in fake.rules[0]
    fake.calls.clear()
    fw.housekeeping(now=1000)
    assert len(fake.calls) == 1  # nothing expired: only read


# -- ipfw --------------------------------------------------------------------------

IPFW_ADD = [IPFW, "add", "10000", "set", "1", "pass", "6", "from", "198.18.0.2", "to", "me",
            "dst-port", "22", "setup", "keep-state", "//", f"_exp_{EXP}"]  # fmt: skip


def test_ipfw_argv_follow_fwknopds_templates() -> None:
    rules = IpfwRules(IPFW, active_set=1, expire_set=2)
    assert rules.add(10000, Opening(SRC, "tcp", 22, EXP)) == IPFW_ADD
    # udp: no `setup`, which matches TCP SYN packets only and so would match nothing here
    assert rules.add(10001, Opening(SRC, "udp", 53, 7, DST)) == [
        IPFW, "add", "10001", "set", "1", "pass", "17", "from", "198.18.0.2", "to", "198.18.0.1",
        "dst-port", "53", "keep-state", "//", "_exp_7",
    ]  # fmt: skip
    assert rules.check_state(10000) == [IPFW, "add", "10000", "set", "1", "check-state"]
    assert rules.disable_expire_set() == [IPFW, "set", "disable", "2"]
    assert rules.move_to_expire_set(10003) == [IPFW, "set", "move", "rule", "10003", "to", "2"]
    assert rules.delete_set(1) == [IPFW, "delete", "set", "1"]
    assert rules.delete_rule(10003, 2) == [IPFW, "set", "2", "delete", "10003"]
    assert rules.list_set(1) == [IPFW, "set", "1", "list"]
    assert rules.list_expire_dynamic() == [IPFW, "-d", "set", "2", "list"]
    assert rules.show(2) == [IPFW, "-d", "-S", "-T", "set", "2", "list"]


def test_ipfw_reads_its_listings() -> None:
    line = (
        f"10000 allow tcp from 198.18.0.2 to me dst-port 22 setup keep-state :default // _exp_{EXP}"
    )
    assert parse_ipfw_rule(line) == (10000, (SRC, "tcp", 22), EXP)
    assert parse_ipfw_rule("# DISABLED 10004 set 2 allow udp from 198.18.0.3 to me dst-port 53 "
                           "keep-state // _exp_9") == (10004, (SRC + 1, "udp", 53), 9)  # fmt: skip
    assert parse_ipfw_rule("10000 check-state :default") is None
    assert parse_ipfw_rule("10001 allow tcp from any to me dst-port 22 // _exp_1") is None
    listing = (
        "10002 allow tcp from 198.18.0.2 to me dst-port 22 setup keep-state // _exp_1\n"
        "## Dynamic rules (2 262144):\n"
        "10002 STATE tcp 198.18.0.2 51234 <-> 198.18.0.1 22 :default\n"
    )
    assert dynamic_rules(listing) == [10002]
    assert dynamic_rules(listing.split("## Dynamic", maxsplit=1)[0]) == []


class FakeIpfw:
    """ipfw's sets as far as the backend's commands go: numbered rules, moves, states."""

    def __init__(self) -> None:
        self.sets: dict[int, dict[int, str]] = {1: {}, 2: {}}
        self.states: set[int] = set()  # rule numbers with dynamic rules
        self.disabled: set[int] = set()
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        args = list(argv)
        self.calls.append(args)
        match args[1:]:
            case ["add", num, "set", s, *rest]:
                self.sets.setdefault(int(s), {})[int(num)] = " ".join(rest)
            case ["set", "disable", s]:
                self.disabled.add(int(s))
            case ["set", "move", "rule", num, "to", s]:
                for rules in self.sets.values():
                    if int(num) in rules:
                        self.sets[int(s)][int(num)] = rules.pop(int(num))
            case ["delete", "set", s]:
                self.sets[int(s)] = {}
            case ["set", s, "delete", num]:
                if self.sets[int(s)].pop(int(num), None) is None:
                    return 65, "", "rule not found"
            case ["set", s, "list"]:
                return 0, "".join(f"{n} {r}\n" for n, r in sorted(self.sets[int(s)].items())), ""
            case ["-d", "-S", "-T", "set", s, "list"]:
                rules = self.sets[int(s)]
                return 0, "".join(f"{n} set {s} {r}\n" for n, r in sorted(rules.items())), ""
            case ["-d", "set", s, "list"]:
                rules = self.sets[int(s)]
                dyn = [f"{n} STATE tcp 198.18.0.2 5000 <-> 198.18.0.1 22\n"
                       for n in sorted(rules) if n in self.states]  # fmt: skip
                return 0, "## Dynamic rules (1 262144):\n" + "".join(dyn), ""
            case _:
                raise AssertionError(args)
        return 0, "", ""


def _ipfw(fake: FakeIpfw, **options: Any) -> Ipfw:
    return Ipfw(fake, IpfwRules(IPFW, active_set=1, expire_set=2), **options)


def test_ipfw_start_flushes_adds_check_state_and_disables_the_expire_set() -> None:
    fake = FakeIpfw()
    fake.sets[1][10000] = "pass 6 from 198.18.0.9 to me dst-port 22 setup keep-state // _exp_5"
    fake.sets[2][10007] = "pass 6 from 198.18.0.8 to me dst-port 22 setup keep-state // _exp_4"
    fw = _ipfw(fake, check_state=True)
    fw.start(now=1000)
    assert fake.calls == [
        [IPFW, "delete", "set", "1"],
        [IPFW, "add", "10000", "set", "1", "check-state"],
        [IPFW, "set", "disable", "2"],
        [IPFW, "set", "2", "list"],
    ]
    assert fw.draining == {10007}  # still draining from before: purged in time, not reused
    fake.calls.clear()
    fw.grant(_grant(("tcp", 22), ("udp", 53), expires=EXP), now=1000)
    assert fake.calls == [
        [*IPFW_ADD[:2], "10001", *IPFW_ADD[3:]],  # 10000 is the check-state rule
        [IPFW, "add", "10002", "set", "1", "pass", "17", "from", "198.18.0.2", "to", "me",
         "dst-port", "53", "keep-state", "//", f"_exp_{EXP}"],
    ]  # fmt: skip


def test_ipfw_expiry_moves_rules_then_purges_the_drained_set() -> None:
    fake = FakeIpfw()
    fw = _ipfw(fake, purge_interval=30)
    fw.start(now=1000)
    fw.grant(_grant(("tcp", 22), expires=1030), now=1000)
    fw.grant(_grant(("tcp", 22), expires=1060), now=1010)  # extended: a new rule, the old one goes
    assert fake.calls[-2:] == [
        [*IPFW_ADD[:2], "10001", *IPFW_ADD[3:-1], "_exp_1060"],
        [IPFW, "set", "move", "rule", "10000", "to", "2"],
    ]
    assert fw.draining == {10000}
    assert fw.next_expiry() == 1040  # the purge, before the rule's 1060
    fake.states = {10000}  # an established connection still uses the moved rule
    fake.calls.clear()
    assert fw.expire(now=1040) == []
    assert fake.calls == [[IPFW, "-d", "set", "2", "list"]]  # looked, did not delete
    assert fw.next_expiry() == 1060
    fake.calls.clear()
    assert [o.port for o in fw.expire(now=1060)] == [22]
    assert fake.calls == [[IPFW, "set", "move", "rule", "10001", "to", "2"]]
    assert fw.next_expiry() == 1070  # no opening left: the purge still gets its turn
    fake.states = set()
    fake.calls.clear()
    fw.expire(now=1070)
    assert fake.calls == [[IPFW, "-d", "set", "2", "list"], [IPFW, "delete", "set", "2"]]
    assert fw.draining == set() and fw.next_expiry() is None
    assert fake.sets == {1: {}, 2: {}}
    fw.grant(_grant(("tcp", 22), expires=2000), now=1100)
    assert fake.calls[-1][2] == "10000"  # purged numbers are free again


def test_ipfw_restart_adopts_open_rules_and_retires_expired_ones() -> None:
    fake = FakeIpfw()
    fake.sets[1] = {
        10000: "check-state :default",
        10001: "allow tcp from 198.18.0.2 to me dst-port 22 setup keep-state // _exp_2000",
        10002: "allow udp from 198.18.0.3 to me dst-port 53 keep-state // _exp_900",
        10005: "allow tcp from 198.18.0.2 to me dst-port 22 setup keep-state // _exp_1500",
    }
    fw = _ipfw(fake, flush_at_init=False, check_state=True)
    fw.start(now=1000)
    assert [IPFW, "delete", "set", "1"] not in fake.calls
    assert [IPFW, "add", "10000", "set", "1", "check-state"] not in fake.calls  # already there
    assert [(str(o.source), o.port, o.expires) for o in fw.open.values()] == [
        ("198.18.0.2", 22, 2000)
    ]
    assert fw.numbers == {(SRC, "tcp", 22): 10001}
    moved = [c[4] for c in fake.calls if c[1:3] == ["set", "move"]]
    assert moved == ["10002", "10005"]  # expired; shorter than 10001 for the same port
    assert fw.draining == {10002, 10005}
    fw.grant(_grant(("tcp", 80), expires=3000), now=1000)
    assert fake.calls[-1][2] == "10003"  # none of the numbers in use or draining


def test_ipfw_refuses_when_its_numbers_are_used_up() -> None:
    fw = _ipfw(FakeIpfw(), start_number=65533, max_rules=100)
    fw.start(now=0)
    fw.grant(_grant(("tcp", 22), ("tcp", 23)), now=0)  # 65533 and 65534: 65535 is ipfw's own
    assert sorted(fw.numbers.values()) == [65533, 65534]
    with pytest.raises(FirewallError, match=re.escape("no free ipfw rule number in 65533..65534")):
        fw.grant(_grant(("tcp", 24)), now=0)


def test_ipfw_flush_deletes_both_sets_but_never_set_zero() -> None:
    fake = FakeIpfw()
    fw = _ipfw(fake)
    fw.start(now=0)
    fw.grant(_grant(("tcp", 22)), now=0)
    fake.calls.clear()
    fw.stop()
    assert fake.calls == [[IPFW, "delete", "set", "1"], [IPFW, "delete", "set", "2"]]
    # sets 0: ipfw's default set holds everyone's rules; ours go by number, expiry deletes
    zero = FakeIpfw()
    zero.sets[0] = {}
    fw = Ipfw(zero, IpfwRules(IPFW, active_set=0, expire_set=0))
    fw.start(now=0)
    fw.grant(_grant(("tcp", 22), expires=10), now=0)
    fw.expire(now=10)
    fw.grant(_grant(("tcp", 23), expires=20), now=10)
    fw.stop()
    assert [c[1:] for c in zero.calls] == [
        ["set", "0", "list"],  # set 0 is read, never flushed
        ["add", "10000", "set", "0", "pass", "6", "from", "198.18.0.2", "to", "me", "dst-port",
         "22", "setup", "keep-state", "//", "_exp_10"],
        ["set", "0", "delete", "10000"],
        ["add", "10000", "set", "0", "pass", "6", "from", "198.18.0.2", "to", "me", "dst-port",
         "23", "setup", "keep-state", "//", "_exp_20"],
        ["set", "0", "delete", "10000"],
    ]  # fmt: skip


def test_ipfw_listing_shows_both_sets() -> None:
    fake = FakeIpfw()
    fw = _ipfw(fake)
    text = fw.listing()
    assert fake.calls == [[IPFW, "-d", "-S", "-T", "set", "1", "list"],
                          [IPFW, "-d", "-S", "-T", "set", "2", "list"]]  # fmt: skip
    assert "Active Rules (set 1)" in text and "Expired Rules (set 2)" in text


# -- configuration and choice --------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "fwknopd.conf"
    path.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\n{text}")
    return load_server_config(path)


def test_the_spec_defaults_of_the_firewalld_ipfw_and_pf_settings(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    for ipt in ("INPUT", "OUTPUT", "FORWARD", "DNAT", "SNAT", "MASQUERADE"):
        assert config.values[f"FIREWD_{ipt}_ACCESS"] == config.values[f"IPT_{ipt}_ACCESS"]
    expected = {
        "FLUSH_FIREWD_AT_INIT": "Y", "FLUSH_FIREWD_AT_EXIT": "Y", "ENABLE_FIREWD_OUTPUT": "N",
        "ENABLE_FIREWD_FORWARDING": "N", "ENABLE_FIREWD_LOCAL_NAT": "N", "ENABLE_FIREWD_SNAT": "N",
        "ENABLE_FIREWD_COMMENT_CHECK": "Y",
        "FLUSH_IPFW_AT_INIT": "Y", "FLUSH_IPFW_AT_EXIT": "Y", "IPFW_START_RULE_NUM": "10000",
        "IPFW_MAX_RULES": "65535", "IPFW_ACTIVE_SET_NUM": "1", "IPFW_EXPIRE_SET_NUM": "2",
        "IPFW_EXPIRE_PURGE_INTERVAL": "30", "IPFW_ADD_CHECK_STATE": "N",
        "PF_ANCHOR_NAME": "fwknop", "PF_EXPIRE_INTERVAL": "30",
    }  # fmt: skip
    assert {name: config.values[name] for name in expected} == expected
    # FIREWALL_EXE, when unset, is each backend's own tool
    tools = {"firewalld": "/usr/bin/firewall-cmd", "pf": "/sbin/pfctl", "ipfw": "/sbin/ipfw",
             "iptables": "/usr/sbin/iptables"}  # fmt: skip
    for kind, exe in tools.items():
        made = make_firewall(_config(tmp_path, f"FIREWALL_TYPE {kind}\n"), run=Recorder())
        assert made.rules.exe == exe, kind  # type: ignore[attr-defined]
    mine = _config(tmp_path, "FIREWALL_TYPE firewalld\nFIREWALL_EXE /opt/bin/firewall-cmd\n")
    assert make_firewall(mine, run=Recorder()).rules.exe == "/opt/bin/firewall-cmd"  # type: ignore[attr-defined]


def test_bad_values_are_file_and_line_errors(tmp_path: Path) -> None:
    text = (
        "FIREWALL_TYPE ipf\n"
        "IPFW_ACTIVE_SET_NUM 64\n"
        "IPFW_EXPIRE_PURGE_INTERVAL 0\n"
        "PF_ANCHOR_NAME not an anchor\n"
        "FIREWD_INPUT_ACCESS ACCEPT, filter, INPUT\n"
        "IPFW_START_RULE_NUM ten\n"
    )
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, text)
    path = tmp_path / "fwknopd.conf"
    assert str(info.value).splitlines() == [
        f"{path}:7: IPFW_START_RULE_NUM must be a number from 0 to 131071, not 'ten'",
        f"{path}:3: IPFW_ACTIVE_SET_NUM must be a number from 0 to 63, not '64'",
        f"{path}:4: IPFW_EXPIRE_PURGE_INTERVAL must be a number from 1 to 131071, not '0'",
        f"{path}:2: FIREWALL_TYPE 'ipf' is not a firewall type; it must be one of nftables, "
        "iptables, firewalld, pf, ipfw, log",
        f"{path}:5: PF_ANCHOR_NAME must be a pf anchor name, not 'not an anchor'",
    ]
    _config(tmp_path, "IPFW_ACTIVE_SET_NUM 0\nIPFW_EXPIRE_SET_NUM 0\n")  # both 0: allowed


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (
            "IPFW_ACTIVE_SET_NUM 2",
            "IPFW_ACTIVE_SET_NUM and IPFW_EXPIRE_SET_NUM must differ (both are 2)",
        ),
        (
            "FIREWD_INPUT_ACCESS ACCEPT, filter, INPUT",
            "FIREWD_INPUT_ACCESS must be 'target, table, from_chain, position, to_chain, position'",
        ),
    ],
)
def test_a_backends_own_problem_refuses_for_it_and_is_a_warning_for_the_others(
    tmp_path: Path, setting: str, problem: str
) -> None:
    """As fwknopd: its ipfw (firewalld) build refuses it, its Linux build ignores those keys."""
    owner = "ipfw" if setting.startswith("IPFW") else "firewalld"
    path = tmp_path / "fwknopd.conf"
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, f"FIREWALL_TYPE {owner}\n{setting}\n")
    assert str(info.value) == f"{path}:3: {problem}"
    warnings: list[str] = []
    path.write_text(f"FIREWALL_TYPE iptables\n{setting}\n")
    load_server_config(path, warnings=warnings)
    assert warnings == [f"{path}:2: {problem}; ignored, as FIREWALL_TYPE is not {owner}"]


def test_firewall_type_chooses_the_backend_and_its_settings(tmp_path: Path) -> None:
    run = Recorder()
    fwd = make_firewall(
        _config(tmp_path, "FIREWALL_TYPE firewalld\nFLUSH_FIREWD_AT_EXIT N\n"
                          "FIREWD_INPUT_ACCESS ACCEPT, filter, INPUT, 2, SPA_IN, 1\n"),
        run=run,
    )  # fmt: skip
    assert isinstance(fwd, Firewalld)
    assert (fwd.flush_at_init, fwd.flush_at_exit) == (True, False)
    assert fwd.rules.add_jump() == [FWCMD, "--direct", "--passthrough", "ipv4", "-t", "filter",
                                    "-I", "INPUT", "2", "-j", "SPA_IN"]  # fmt: skip
    pf = make_firewall(_config(tmp_path, "FIREWALL_TYPE pf\nPF_ANCHOR_NAME spa/in\n"), run=run)
    assert isinstance(pf, Pf)
    assert pf.rules.show_rules() == [PFCTL, "-a", "spa/in", "-s", "rules"]
    ipfw = make_firewall(
        _config(tmp_path, "FIREWALL_TYPE IPFW\nIPFW_ACTIVE_SET_NUM 5\nIPFW_EXPIRE_SET_NUM 6\n"
                          "IPFW_START_RULE_NUM 2000\nIPFW_MAX_RULES 10\nIPFW_ADD_CHECK_STATE Y\n"
                          "IPFW_EXPIRE_PURGE_INTERVAL 7\nFLUSH_IPFW_AT_INIT N\n"),
        run=run,
    )  # fmt: skip
    assert isinstance(ipfw, Ipfw)
    assert (ipfw.first, ipfw.last, ipfw.check_state, ipfw.purge_interval) == (2000, 2009, True, 7)
    assert (ipfw.rules.active_set, ipfw.rules.expire_set, ipfw.flush_at_init) == (5, 6, False)
    assert ipfw.rules.exe == IPFW
    assert run.calls == []  # choosing runs nothing
