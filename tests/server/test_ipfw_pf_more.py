"""ipfw and pf: set 0 read at start, grants made whole or not at all, ``--fw-list-all``.

``--fw-list-all`` is what fwknopd 2.6.10's builds print: for ipfw the whole
ruleset (``ipfw list``, after "Listing all ipfw rules..."), for pf its
anchor (fwknopd's pf build lists the anchor for both ``--fw-list`` and
``--fw-list-all``: "Listing fwknopd pf rules...", then "Active Rules in PF
anchor 'fwknop':" and ``pfctl -a fwknop -s rules``).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.cli import ExitCode, main
from fwknop_server.config import load_server_config
from fwknop_server.firewall import FirewallError, make_firewall
from fwknop_server.firewall.ipfw import Ipfw, IpfwRules
from fwknop_server.firewall.nftables import Nftables
from fwknop_server.firewall.pf import Pf, PfRules
from fwknop_server.vocab import Grant

from fwknop_core import MessageType
from tests.helpers.recorder import Recorder
from tests.server.test_firewall_backends import FakeIpfw, FakePfctl
from tests.server.test_firewall_rules import CHAIN, FakeNft

IPFW = "/sbin/ipfw"
PFCTL = "/sbin/pfctl"
SRC = ipaddress.ip_address("198.18.0.2")


def _grant(*ports: tuple[str, int], expires: int = 1030) -> Grant:
    return Grant(SRC, None, ports, 30, expires, 1, "u", MessageType.ACCESS)


# -- ipfw with set 0 ------------------------------------------------------------------


def test_ipfw_active_set_zero_is_read_at_start_and_its_numbers_are_never_handed_out() -> None:
    fake = FakeIpfw()
    fake.sets[0] = {
        10000: "allow tcp from any to any dst-port 80",  # another tool's rule, in our range
        10001: "deny ip from 203.0.113.0/24 to any",
        10003: "pass 6 from 198.18.0.7 to me dst-port 22 setup keep-state // _exp_5",  # ours
    }
    fw = Ipfw(fake, IpfwRules(IPFW, active_set=0, expire_set=0))
    fw.start(now=1000)
    assert [IPFW, "set", "0", "list"] in fake.calls
    assert [IPFW, "delete", "set", "0"] not in fake.calls  # everyone's set: never flushed
    # our rule of an earlier run is deleted (FLUSH_IPFW_AT_INIT), the others stay
    assert sorted(fake.sets[0]) == [10000, 10001]
    fw.grant(_grant(("tcp", 22), ("udp", 53)), now=1000)
    assert sorted(fw.numbers.values()) == [10002, 10003]  # not 10000, 10001: someone else's
    # without the flush, ours are adopted and the others' numbers still reserved
    kept = FakeIpfw()
    kept.sets[0] = {
        10000: "allow tcp from any to any dst-port 80",
        10001: "allow tcp from 198.18.0.2 to me dst-port 22 setup keep-state // _exp_2000",
    }
    adopted = Ipfw(kept, IpfwRules(IPFW, active_set=0, expire_set=0), flush_at_init=False)
    adopted.start(now=1000)
    assert adopted.numbers == {(SRC, "tcp", 22): 10001}
    adopted.grant(_grant(("tcp", 80)), now=1000)
    assert adopted.numbers[(SRC, "tcp", 80)] == 10002


class FailingAdd(FakeIpfw):
    """ipfw that refuses the ``n``-th ``add``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.adds = 0

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        if argv[1] == "add":
            self.adds += 1
            if self.adds == self.n:
                self.calls.append(list(argv))
                return 71, "", "ipfw: setsockopt(IP_FW_XADD): Invalid argument"
        return super().__call__(argv, stdin=stdin)


def test_ipfw_takes_a_grant_back_when_one_of_its_rules_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FailingAdd(2)
    fw = Ipfw(fake, IpfwRules(IPFW, active_set=1, expire_set=2))
    fw.start(now=1000)
    fake.calls.clear()
    with caplog.at_level(logging.WARNING), pytest.raises(FirewallError, match="Invalid argument"):
        fw.grant(_grant(("tcp", 22), ("udp", 53)), now=1000)
    assert [c[1:3] for c in fake.calls] == [["add", "10000"], ["add", "10001"], ["set", "1"]]
    assert fake.calls[-1] == [IPFW, "set", "1", "delete", "10000"]
    assert fake.sets[1] == {} and fw.open == {} and fw.numbers == {}
    assert "took back 1 rule(s)" in caplog.text
    fw.grant(_grant(("tcp", 22)), now=1000)  # the number taken back is free again
    assert fw.numbers == {(SRC, "tcp", 22): 10000}


# -- pf and nftables: one load, one transaction --------------------------------------


def test_pf_loads_a_grant_in_one_command_so_a_failure_leaves_nothing() -> None:
    class Refusing(FakePfctl):
        def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> Any:
            if "-f" in argv:
                self.calls.append((list(argv), stdin))
                return 1, "", "pfctl: Syntax error in config file: pf rules not loaded"
            return super().__call__(argv, stdin=stdin)

    fake = Refusing()
    fw = Pf(fake, PfRules(PFCTL, "fwknop"))
    with pytest.raises(FirewallError, match="pf rules not loaded"):
        fw.grant(_grant(("tcp", 22), ("udp", 53)), now=1000)
    assert fw.open == {} and fake.rules == []
    assert sum(1 for argv, _stdin in fake.calls if "-f" in argv) == 1  # both rules, one load


def test_nftables_makes_a_grant_in_one_transaction_so_a_failure_leaves_nothing() -> None:
    class Refusing(FakeNft):
        def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None:
            if "add" in document["nftables"][0] and "element" in document["nftables"][0]["add"]:
                self.sent.append(document)
                raise FirewallError("nft: Could not process rule: No such file or directory")
            return super().__call__(document)

    fake = Refusing([CHAIN])
    fw = Nftables(fake, flush_at_init=False)
    fw.start(now=1000)
    fake.sent.clear()
    with pytest.raises(FirewallError):
        fw.grant(_grant(("tcp", 22), ("udp", 53)), now=1000)
    assert len(fake.sent) == 1 and len(fake.sent[0]["nftables"]) == 2  # one transaction
    assert fw.open == {}


# -- --fw-list-all ----------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "fwknopd.conf"
    path.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\n{text}")
    return load_server_config(path)


def test_fw_list_all_of_ipfw_is_the_whole_ruleset(tmp_path: Path) -> None:
    ruleset = "00100 allow ip from any to any via lo0\n10000 allow tcp from 198.18.0.2 to me\n"

    def run(argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        assert list(argv) == [IPFW, "list"]
        return 0, ruleset, ""

    fw = make_firewall(_config(tmp_path, "FIREWALL_TYPE ipfw\n"), run=run)
    assert fw.listing_all() == f"Listing all ipfw rules...\n{ruleset}"


def test_fw_list_all_of_pf_is_its_anchor_as_fwknopd_prints_it(tmp_path: Path) -> None:
    rules = (
        "pass in quick proto tcp from 198.18.0.2 to any port = 22 flags S/SA keep state "
        'label "_exp_9"\n'
    )
    run = Recorder()
    fw = make_firewall(_config(tmp_path, "FIREWALL_TYPE pf\nPF_ANCHOR_NAME spa\n"), run=run)

    def answer(argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        run(argv)
        return 0, rules, ""

    fw._run = answer  # type: ignore[attr-defined]
    assert fw.listing_all() == (
        f"Listing fwknopd pf rules...\n\nActive Rules in PF anchor 'spa':\n{rules}"
    )
    assert run.calls == [[PFCTL, "-a", "spa", "-s", "rules"]]


def test_fw_list_all_of_iptables_and_firewalld_lists_their_own_tool(tmp_path: Path) -> None:
    run = Recorder()
    make_firewall(_config(tmp_path, "FIREWALL_TYPE iptables\n"), run=run).listing_all()
    make_firewall(_config(tmp_path, "FIREWALL_TYPE firewalld\n"), run=run).listing_all()
    assert run.calls == [
        ["/usr/sbin/iptables", "-w", "-S"],
        ["/usr/bin/firewall-cmd", "--direct", "--passthrough", "ipv4", "-S"],
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("ipfw", "Listing all ipfw rules...\nran: list\n"),
        ("pf", "Listing fwknopd pf rules...\n\nActive Rules in PF anchor 'fwknop':\n"
               "ran: -a fwknop -s rules\n"),
    ],
)  # fmt: skip
def test_the_fw_list_all_option_runs_the_backends_own_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, expected: str
) -> None:
    tool = tmp_path / "tool"
    tool.write_text('#!/bin/sh\necho "ran: $*"\n')
    tool.chmod(0o755)
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE {kind}\nFIREWALL_EXE {tool}\n")
    assert main(["-c", str(conf), "--fw-list-all"]) == ExitCode.OK
    assert capsys.readouterr().out == expected  # before: "ran: -w -S", iptables' options
