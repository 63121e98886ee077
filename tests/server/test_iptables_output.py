"""ENABLE_IPT_OUTPUT / ENABLE_FIREWD_OUTPUT, grants made whole or not at all, and the rescan.

The OUTPUT rules are pinned against what the real fwknopd 2.6.10 runs (its
``create_rule()`` commands with ``-v -v``, read in a namespace):

    iptables -A FWKNOP_INPUT -t filter -p 6 -s 198.18.0.2 -d 198.18.0.1 --dport 22 \\
        -m comment --comment _exp_EXP -j ACCEPT
    iptables -A FWKNOP_OUTPUT -t filter -p 6 -d 198.18.0.2 -s 198.18.0.1 --sport 22 \\
        -m comment --comment _exp_EXP -j ACCEPT

(with ``ENABLE_DESTINATION_RULE``; 0.0.0.0/0 without), access then OUTPUT for
each port; a NAT grant gets no OUTPUT rule.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from fwknop_server.config import ChainSpec, ServerConfig, load_server_config
from fwknop_server.firewall import FirewallError, make_firewall
from fwknop_server.firewall.firewalld import Firewalld
from fwknop_server.firewall.iptables import Iptables
from fwknop_server.firewall.iptrules import IptablesRules, parse_rule
from fwknop_server.nat import nat_settings
from fwknop_server.vocab import Grant, NatGrant, Snat

from fwknop_core import MessageType
from tests.helpers.recorder import Recorder

IPT = "/usr/sbin/iptables"
FWCMD = "/usr/bin/firewall-cmd"
SRC = ipaddress.ip_address("198.18.0.2")
DST = ipaddress.ip_address("198.18.0.1")
INPUT = ChainSpec("ACCEPT", "filter", "INPUT", 1, "FWKNOP_INPUT", 1)
OUTPUT = ChainSpec("ACCEPT", "filter", "OUTPUT", 1, "FWKNOP_OUTPUT", 1)
NOW = 1000


def _grant(*ports: tuple[str, int], expires: int = 1030, destination: object = None) -> Grant:
    return Grant(SRC, destination, ports, 30, expires, 1, "u", MessageType.ACCESS)


def _config(tmp_path: Path, text: str) -> ServerConfig:
    path = tmp_path / "fwknopd.conf"
    path.write_text(f"FWKNOP_RUN_DIR {tmp_path}\nFIREWALL_TYPE iptables\n{text}")
    return load_server_config(path)


class FailAt:
    """A runner that records each command and fails the ``n``-th one that adds a rule."""

    def __init__(self, n: int, verb: str = "-A") -> None:
        self.n = n
        self.verb = verb
        self.calls: list[list[str]] = []
        self._adds = 0

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if self.verb in argv:
            self._adds += 1
            if self._adds == self.n:
                return 1, "", "iptables: Resource temporarily unavailable."
        return 0, "", ""


# -- ENABLE_IPT_OUTPUT --------------------------------------------------------------


def test_output_rules_are_fwknopds_after_each_access_rule(tmp_path: Path) -> None:
    run = Recorder()
    config = _config(tmp_path, "ENABLE_IPT_OUTPUT Y\nENABLE_DESTINATION_RULE Y\n")
    firewall = make_firewall(config, run=run)
    assert isinstance(firewall, Iptables)
    firewall.grant(_grant(("tcp", 22), ("udp", 53), destination=DST), NOW)
    exp = ["-m", "comment", "--comment", "_exp_1030", "-j", "ACCEPT"]
    assert run.calls == [
        [IPT, "-w", "-t", "filter", "-A", "FWKNOP_INPUT", "-p", "tcp", "-s", "198.18.0.2",
         "-d", "198.18.0.1", "--dport", "22", *exp],
        [IPT, "-w", "-t", "filter", "-A", "FWKNOP_OUTPUT", "-p", "6", "-d", "198.18.0.2",
         "-s", "198.18.0.1", "--sport", "22", *exp],
        [IPT, "-w", "-t", "filter", "-A", "FWKNOP_INPUT", "-p", "udp", "-s", "198.18.0.2",
         "-d", "198.18.0.1", "--dport", "53", *exp],
        [IPT, "-w", "-t", "filter", "-A", "FWKNOP_OUTPUT", "-p", "17", "-d", "198.18.0.2",
         "-s", "198.18.0.1", "--sport", "53", *exp],
    ]  # fmt: skip
    run.calls.clear()
    firewall.expire(2000)
    deleted = [argv[4:6] for argv in run.calls]
    assert deleted == [["-D", "FWKNOP_INPUT"], ["-D", "FWKNOP_OUTPUT"]] * 2
    assert run.calls[1][6:] == ["-p", "6", "-d", "198.18.0.2", "-s", "198.18.0.1", "--sport",
                                "22", *exp]  # fmt: skip


def test_the_output_chain_is_made_after_the_input_chain_and_flushed_with_it(
    tmp_path: Path,
) -> None:
    run = Recorder(fail=("-S", "-C"))  # nothing exists yet
    config = _config(tmp_path, "ENABLE_IPT_OUTPUT Y\nFLUSH_IPT_AT_INIT N\n")
    make_firewall(config, run=run).start(NOW)
    made = [" ".join(argv[4:]) for argv in run.calls if argv[4] in ("-N", "-I")]
    assert made == ["-N FWKNOP_INPUT", "-I INPUT 1 -j FWKNOP_INPUT",
                    "-N FWKNOP_OUTPUT", "-I OUTPUT 1 -j FWKNOP_OUTPUT"]  # fmt: skip
    run = Recorder(fail=("-D",))  # one jump each
    make_firewall(config, run=run).flush()
    assert [" ".join(argv[4:]) for argv in run.calls] == [
        "-D INPUT -j FWKNOP_INPUT", "-F FWKNOP_INPUT", "-X FWKNOP_INPUT",
        "-D OUTPUT -j FWKNOP_OUTPUT", "-F FWKNOP_OUTPUT", "-X FWKNOP_OUTPUT",
    ]  # fmt: skip
    without = make_firewall(_config(tmp_path, "FLUSH_IPT_AT_INIT N\n"), run=Recorder())
    assert isinstance(without, Iptables) and without.output is None
    # --fw-list shows it after the input chain, as fwknopd lists its chains
    run = Recorder()
    make_firewall(config, run=run).listing()
    assert [argv[5] for argv in run.calls] == ["FWKNOP_INPUT", "FWKNOP_OUTPUT"]


def test_firewalld_output_goes_through_the_passthrough(tmp_path: Path) -> None:
    run = Recorder()
    spec = "FIREWD_OUTPUT_ACCESS ACCEPT, filter, OUTPUT, 2, SPA_OUT, 1\n"
    config = _config(tmp_path, f"FIREWALL_TYPE firewalld\nENABLE_FIREWD_OUTPUT Y\n{spec}")
    firewall = make_firewall(config, run=run)
    assert isinstance(firewall, Firewalld)
    firewall.grant(_grant(("tcp", 22)), NOW)
    assert run.calls[1] == [
        FWCMD, "--direct", "--passthrough", "ipv4", "-t", "filter", "-A", "SPA_OUT", "-p", "6",
        "-d", "198.18.0.2", "-s", "0.0.0.0/0", "--sport", "22", "-m", "comment", "--comment",
        "_exp_1030", "-j", "ACCEPT",
    ]  # fmt: skip
    # ENABLE_IPT_OUTPUT is the iptables build's switch: firewalld's is ENABLE_FIREWD_OUTPUT
    other = make_firewall(_config(tmp_path, "FIREWALL_TYPE firewalld\nENABLE_IPT_OUTPUT Y\n"),
                          run=Recorder())  # fmt: skip
    assert isinstance(other, Firewalld) and other.output is None


def test_an_output_rule_is_read_back_as_its_opening() -> None:
    line = ("-A FWKNOP_OUTPUT -s 198.18.0.1/32 -d 198.18.0.2/32 -p tcp -m tcp --sport 22 "
            "-m comment --comment _exp_1796680163 -j ACCEPT")  # fmt: skip
    parsed = parse_rule(line, reply=True)
    assert parsed is not None
    assert parsed[:2] == ((SRC, "tcp", 22), 1796680163)
    assert parse_rule(line) is None  # no --dport: not an access rule


def test_a_restart_adopts_both_rules_of_an_opening_and_deletes_both(tmp_path: Path) -> None:
    listings = {
        "FWKNOP_INPUT": "-N FWKNOP_INPUT\n-A FWKNOP_INPUT -s 198.18.0.2/32 -d 0.0.0.0/0 -p tcp "
        "-m tcp --dport 22 -m comment --comment _exp_1500 -j ACCEPT\n",
        "FWKNOP_OUTPUT": "-N FWKNOP_OUTPUT\n-A FWKNOP_OUTPUT -s 0.0.0.0/0 -d 198.18.0.2/32 -p tcp "
        "-m tcp --sport 22 -m comment --comment _exp_1500 -j ACCEPT\n"
        "-A FWKNOP_OUTPUT -s 0.0.0.0/0 -d 198.18.0.9/32 -p tcp -m tcp --sport 80 "
        "-m comment --comment _exp_900 -j ACCEPT\n",
    }
    calls: list[list[str]] = []

    def run(argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        calls.append(list(argv))
        if "-S" in argv:
            return 0, listings[argv[-1]], ""
        return 0, "", ""

    config = _config(tmp_path, "ENABLE_IPT_OUTPUT Y\nFLUSH_IPT_AT_INIT N\n")
    firewall = make_firewall(config, run=run)
    firewall.start(NOW)
    assert list(firewall.open) == [(SRC, "tcp", 22)]
    # the expired OUTPUT rule of someone else's earlier run is gone
    assert [IPT, "-w", "-t", "filter", "-D", "FWKNOP_OUTPUT", "-s", "0.0.0.0/0", "-d",
            "198.18.0.9/32", "-p", "tcp", "-m", "tcp", "--sport", "80", "-m", "comment",
            "--comment", "_exp_900", "-j", "ACCEPT"] in calls  # fmt: skip
    calls.clear()
    firewall.expire(1500)
    assert [argv[5] for argv in calls] == ["FWKNOP_INPUT", "FWKNOP_OUTPUT"]
    assert calls[1][6:] == listings["FWKNOP_OUTPUT"].splitlines()[1].split()[2:]


# -- issue 11 item 5: a grant is made whole, or not at all ---------------------------


@pytest.mark.parametrize("output", [False, True])
def test_a_failed_rule_takes_the_rules_made_before_it_back(
    tmp_path: Path, output: bool, caplog: pytest.LogCaptureFixture
) -> None:
    run = FailAt(2)
    text = "ENABLE_IPT_OUTPUT Y\n" if output else ""
    firewall = make_firewall(_config(tmp_path, text), run=run)
    with caplog.at_level(logging.WARNING), pytest.raises(FirewallError, match="Resource"):
        firewall.grant(_grant(("tcp", 22), ("udp", 53)), NOW)
    added = [argv for argv in run.calls if "-A" in argv]
    deleted = [argv for argv in run.calls if "-D" in argv]
    assert len(added) == 2
    # the one rule that was made is deleted again, by its own spec
    assert len(deleted) == 1 and deleted[0][6:] == added[0][6:] and deleted[0][5] == added[0][5]
    assert firewall.open == {} and firewall.next_expiry() is None  # nothing to expire later
    assert "took back 1 rule(s) of a grant that could not be made whole" in caplog.text
    # the same grant again, once the firewall works: made whole
    run.n = 0
    run.calls.clear()
    assert len(firewall.grant(_grant(("tcp", 22), ("udp", 53)), NOW)) == 2
    assert len([argv for argv in run.calls if "-A" in argv]) == (4 if output else 2)


def test_a_failed_extension_keeps_the_grant_that_was_open(tmp_path: Path) -> None:
    run = FailAt(99)
    firewall = make_firewall(_config(tmp_path, ""), run=run)
    firewall.grant(_grant(("tcp", 22), ("udp", 53)), NOW)
    run.n, run.calls = 4, []  # the second rule of the extension fails
    with pytest.raises(FirewallError):
        firewall.grant(_grant(("tcp", 22), ("udp", 53), expires=1100), NOW)
    # the new tcp/22 rule is taken back; the old rules were never touched and stay known
    assert [argv[4] for argv in run.calls] == ["-A", "-A", "-D"]
    assert "_exp_1100" in run.calls[2]
    assert {o.expires for o in firewall.open.values()} == {1030}
    run.calls.clear()
    firewall.expire(1030)
    assert sorted(argv[-3] for argv in run.calls) == ["_exp_1030", "_exp_1030"]


def test_a_nat_grant_is_made_whole_or_not_at_all_too(tmp_path: Path) -> None:
    run = FailAt(2)
    firewall = make_firewall(_config(tmp_path, "ENABLE_IPT_FORWARDING Y\n"), run=run)
    nat = NatGrant(False, "tcp", 40022, "198.51.100.2", 22,
                   address=ipaddress.IPv4Address("198.51.100.2"))  # fmt: skip
    grant = Grant(SRC, None, (("tcp", 40022),), 30, 1030, 1, "u", MessageType.NAT_ACCESS, nat=nat)
    with pytest.raises(FirewallError):
        firewall.grant(grant, NOW)
    assert [argv[5] for argv in run.calls if argv[4] in ("-A", "-D")] == [
        "FWKNOP_FORWARD", "FWKNOP_PREROUTING", "FWKNOP_FORWARD"
    ]  # fmt: skip
    assert firewall.nat_open == {}


# -- the rescan goes on past a chain it cannot list ----------------------------------


def test_the_rescan_goes_on_when_the_ipv4_chain_cannot_be_listed() -> None:
    calls: list[list[str]] = []
    expired6 = ("-A FWKNOP_INPUT -s 2001:db8::2/128 -d ::/0 -p tcp -m tcp --dport 22 "
                "-m comment --comment _exp_900 -j ACCEPT\n")  # fmt: skip

    def run(argv: Sequence[str], *, stdin: str | None = None) -> tuple[int, str, str]:
        calls.append(list(argv))
        if "-S" in argv:
            if argv[0].endswith("ip6tables"):
                return 0, expired6, ""
            return 1, "", "iptables: No chain/target/match by that name."
        return 0, "", ""

    firewall = Iptables(
        run,
        IptablesRules(IPT, INPUT),
        rules6=IptablesRules("/usr/sbin/ip6tables", INPUT),
    )
    assert firewall.rescan(NOW) == 1
    assert calls[-1][:6] == ["/usr/sbin/ip6tables", "-w", "-t", "filter", "-D", "FWKNOP_INPUT"]


# -- firewalld NAT: fwknopd's NAT chains behind the passthrough -----------------------


def test_firewalld_nat_makes_the_nat_chains_and_rules_through_the_passthrough(
    tmp_path: Path,
) -> None:
    run = Recorder(fail=("-S", "-C"))  # nothing exists yet
    config = _config(tmp_path, "FIREWALL_TYPE firewalld\nENABLE_FIREWD_FORWARDING Y\n"
                               "ENABLE_FIREWD_SNAT Y\nSNAT_TRANSLATE_IP 198.51.100.1\n"
                               "FLUSH_FIREWD_AT_INIT N\n")  # fmt: skip
    firewall = make_firewall(config, run=run)
    assert isinstance(firewall, Firewalld) and firewall.supports_nat
    firewall.start(NOW)
    passthrough = [FWCMD, "--direct", "--passthrough", "ipv4"]
    made = [argv[4:] for argv in run.calls if argv[6] in ("-N", "-I")]
    assert all(argv[:4] == passthrough for argv in run.calls)
    assert made == [
        ["-t", "filter", "-N", "FWKNOP_INPUT"], ["-t", "filter", "-I", "INPUT", "1", "-j",
                                                  "FWKNOP_INPUT"],
        ["-t", "filter", "-N", "FWKNOP_FORWARD"], ["-t", "filter", "-I", "FORWARD", "1", "-j",
                                                    "FWKNOP_FORWARD"],
        ["-t", "nat", "-N", "FWKNOP_PREROUTING"], ["-t", "nat", "-I", "PREROUTING", "1", "-j",
                                                    "FWKNOP_PREROUTING"],
        ["-t", "nat", "-N", "FWKNOP_POSTROUTING"], ["-t", "nat", "-I", "POSTROUTING", "1", "-j",
                                                     "FWKNOP_POSTROUTING"],
        ["-t", "nat", "-N", "FWKNOP_MASQUERADE"], ["-t", "nat", "-I", "POSTROUTING", "1", "-j",
                                                    "FWKNOP_MASQUERADE"],
    ]  # fmt: skip
    run.calls.clear()
    nat = NatGrant(False, "tcp", 40022, "198.51.100.2", 22, address=ipaddress.IPv4Address(
        "198.51.100.2"))  # fmt: skip
    assert nat_settings(config).forwarding and nat_settings(config).snat  # what the pipeline gets
    snat = dataclasses.replace(nat, snat=Snat(ipaddress.IPv4Address("198.51.100.1")))
    grant = Grant(SRC, None, (("tcp", 40022),), 30, 1030, 1, "u", MessageType.NAT_ACCESS, nat=snat)
    firewall.grant(grant, NOW)
    comment = ["-m", "comment", "--comment", "_exp_1030"]
    assert run.calls == [
        [*passthrough, "-t", "filter", "-A", "FWKNOP_FORWARD", "-p", "6", "-s", "198.18.0.2",
         "--dport", "22", *comment, "-j", "ACCEPT"],
        [*passthrough, "-t", "nat", "-A", "FWKNOP_PREROUTING", "-p", "6", "-s", "198.18.0.2",
         "-d", "0.0.0.0/0", "--dport", "40022", *comment, "-j", "DNAT", "--to-destination",
         "198.51.100.2:22"],
        [*passthrough, "-t", "nat", "-A", "FWKNOP_POSTROUTING", "-p", "6", "-d", "198.51.100.2",
         "--dport", "22", *comment, "-j", "SNAT", "--to-source", "198.51.100.1"],
    ]  # fmt: skip


def test_firewalld_nat_is_off_with_the_iptables_switches(tmp_path: Path) -> None:
    # fwknopd's firewalld build knows only the FIREWD switches; ENABLE_IPT_FORWARDING is not one
    config = _config(tmp_path, "FIREWALL_TYPE firewalld\nENABLE_IPT_FORWARDING Y\n")
    assert not make_firewall(config, run=Recorder()).supports_nat
    iptables = _config(tmp_path, "ENABLE_FIREWD_FORWARDING Y\n")
    assert not make_firewall(iptables, run=Recorder()).supports_nat
