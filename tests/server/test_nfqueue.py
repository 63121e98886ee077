"""NFQUEUE capture (``ENABLE_NFQ_CAPTURE``, ``-n``): its settings, its rules, its verdicts.

The queue rule is pinned argument for argument (fwknopd 2.6.9+'s chain:
``NFQ_TABLE``/``NFQ_CHAIN``, jumped to first from INPUT, ``-p udp -m udp
--dport NFQ_PORT -j NFQUEUE --queue-num NFQ_QUEUE_NUMBER``) and as nft
JSON; the capture source's verdicts are checked on queued packets as the
library hands them over. The real kernel and the real client are in
``test_nfqueue_e2e.py``.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.capture import SOURCES, CaptureSettings
from fwknop_server.capture.frames import ip_parser
from fwknop_server.capture.nfqueue import NfqueueSource, queue_drops
from fwknop_server.cli import _overrides, _parser
from fwknop_server.config import ChainSpec, ServerConfig, load_server_config
from fwknop_server.errors import ConfigError
from fwknop_server.firewall import FirewallError
from fwknop_server.firewall.firewalld import PASSTHROUGH, Firewalld
from fwknop_server.firewall.iptables import Iptables
from fwknop_server.firewall.iptrules import IptablesRules
from fwknop_server.firewall.nfqrules import NFQ_TABLE, NfqChains, NfqSettings
from fwknop_server.firewall.nftables import Nftables
from fwknop_server.firewall.runner import Tools
from fwknop_server.vocab import MUTED, Packet

from tests.helpers.recorder import Recorder

IPT = "/usr/sbin/iptables"
IP6T = "/usr/sbin/ip6tables"
INPUT = ChainSpec("ACCEPT", "filter", "INPUT", 1, "FWKNOP_INPUT", 1)


def _config(tmp_path: Path, text: str = "") -> ServerConfig:
    path = tmp_path / "fwknopd.conf"
    path.write_text(f"FWKNOP_RUN_DIR {tmp_path}\n{text}")
    return load_server_config(path)


# -- settings ------------------------------------------------------------------------


def test_the_keys_and_their_defaults_are_fwknopds(tmp_path: Path) -> None:
    assert NfqSettings.from_config(_config(tmp_path)) is None  # off by default
    nfq = NfqSettings.from_config(_config(tmp_path, "ENABLE_NFQ_CAPTURE Y\n"))
    assert nfq == NfqSettings(queue=1, port=62201, interface=None, table="mangle",
                              chain="FWKNOP_NFQ")  # fmt: skip
    capture = CaptureSettings.from_config(
        _config(tmp_path, "ENABLE_NFQ_CAPTURE Y\nNFQ_QUEUE_NUMBER 9\nENABLE_TCP_SERVER Y\n")
    )
    assert (capture.nfq, capture.nfq_queue, capture.tcp_server) == (True, 9, False)
    # the first source whose condition holds: NFQUEUE before the UDP server, as fwknopd
    both = CaptureSettings(nfq=True, udp_server=True)
    assert next(name for name, wanted, _make in SOURCES if wanted(both)) == "nfqueue"


def test_the_command_line_option_turns_it_on() -> None:
    for option in ("-n", "--nfq-capture"):
        assert _overrides(_parser().parse_args([option])).values["ENABLE_NFQ_CAPTURE"] == "Y"
    assert "ENABLE_NFQ_CAPTURE" not in _overrides(_parser().parse_args([])).values


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("ENABLE_NFQ_CAPTURE Y\nFIREWALL_TYPE pf\n", "NFQUEUE is Linux netfilter's"),
        ("ENABLE_NFQ_CAPTURE Y\nFIREWALL_TYPE ipfw\n", "NFQUEUE is Linux netfilter's"),
        ("NFQ_CHAIN FW/rm\n", "NFQ_CHAIN must be a name"),
        ("NFQ_TABLE -t\n", "NFQ_TABLE must be a name"),
        ("NFQ_QUEUE_NUMBER 65536\n", "NFQ_QUEUE_NUMBER"),
        ("NFQ_PORT 0\n", "NFQ_PORT"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(
    tmp_path: Path, text: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        _config(tmp_path, text)


def test_a_reload_keeps_the_queue_the_firewall_was_started_for() -> None:
    running = CaptureSettings(nfq=True, nfq_queue=3)
    reloaded = CaptureSettings(interface="eth9", nfq=False, nfq_queue=4).on_reload(running)
    assert (reloaded.nfq, reloaded.nfq_queue, reloaded.interface) == (True, 3, "eth9")
    assert not reloaded.reopens  # NFQUEUE reads none of the keys a reload may change
    sniffing = CaptureSettings(nfq=True).on_reload(CaptureSettings())
    assert not sniffing.nfq and sniffing.reopens  # turning it on waits for a restart


# -- the rule, as each backend makes it -------------------------------------------------

NFQ = NfqSettings(queue=7, port=62202, interface="eth1")
CHAIN_ARGS = ["-w", "-t", "mangle"]
RULE = ["-i", "eth1", "-p", "udp", "-m", "udp", "--dport", "62202",
        "-j", "NFQUEUE", "--queue-num", "7"]  # fmt: skip


def test_iptables_makes_fwknopds_chain_its_jump_and_rule_and_removes_them() -> None:
    rec = Recorder(fail=["-S", "-C"])  # nothing there yet
    fw = Iptables(rec, IptablesRules(IPT, INPUT), flush_at_init=False, nfq=NFQ)
    assert fw.nfq is not None
    fw.nfq.start()
    assert rec.calls == [
        [IPT, *CHAIN_ARGS, "-S", "FWKNOP_NFQ"],
        [IPT, *CHAIN_ARGS, "-N", "FWKNOP_NFQ"],
        [IPT, *CHAIN_ARGS, "-C", "INPUT", "-j", "FWKNOP_NFQ"],
        [IPT, *CHAIN_ARGS, "-I", "INPUT", "1", "-j", "FWKNOP_NFQ"],
        [IPT, *CHAIN_ARGS, "-C", "FWKNOP_NFQ", *RULE],
        [IPT, *CHAIN_ARGS, "-A", "FWKNOP_NFQ", *RULE],
    ]
    rec.calls.clear()
    rec.fail = ["-D"]  # one jump to delete
    fw.flush()
    assert rec.calls[-3:] == [
        [IPT, *CHAIN_ARGS, "-D", "INPUT", "-j", "FWKNOP_NFQ"],
        [IPT, *CHAIN_ARGS, "-F", "FWKNOP_NFQ"],
        [IPT, *CHAIN_ARGS, "-X", "FWKNOP_NFQ"],
    ]


def test_with_ipv6_the_queue_rule_is_in_ip6tables_too() -> None:
    rec = Recorder(fail=["-S", "-C"])
    fw = Iptables(rec, IptablesRules(IPT, INPUT), rules6=IptablesRules(IP6T, INPUT), nfq=NFQ)
    assert fw.nfq is not None
    fw.nfq.start()
    assert [IPT, *CHAIN_ARGS, "-A", "FWKNOP_NFQ", *RULE] in rec.calls
    assert [IP6T, *CHAIN_ARGS, "-A", "FWKNOP_NFQ", *RULE] in rec.calls


def test_a_rule_already_there_is_not_added_twice() -> None:
    rec = Recorder()  # every probe answers "there"
    NfqChains(rec, NFQ, [IptablesRules(IPT, NFQ.chain_spec)]).start()
    assert not any("-A" in argv or "-N" in argv or "-I" in argv for argv in rec.calls)


def test_nftables_queues_in_a_table_of_its_own() -> None:
    where = {"family": "inet", "table": NFQ_TABLE}
    assert NfqSettings(queue=7, port=62202).nft_commands() == [
        {"add": {"table": {"family": "inet", "name": NFQ_TABLE}}},
        {"add": {"chain": {**where, "name": "input", "type": "filter", "hook": "input",
                           "prio": -150, "policy": "accept"}}},
        {"flush": {"chain": {**where, "name": "input"}}},
        {"add": {"rule": {**where, "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                       "right": 62202}},
            {"queue": {"num": 7}},
        ]}}},
    ]  # fmt: skip
    interface = NFQ.nft_commands()[-1]["add"]["rule"]["expr"][0]
    assert interface == {"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                                   "right": "eth1"}}  # fmt: skip


class _Nft:
    """An nft runner whose kernel has no queue expression (it answers ENOENT for the rule)."""

    def __init__(self, *, queue: bool) -> None:
        self.queue = queue
        self.sent: list[dict[str, Any]] = []

    def __call__(self, document: dict[str, Any]) -> dict[str, Any] | None:
        self.sent.append(document)
        if not self.queue and any("queue" in str(cmd) for cmd in document["nftables"]):
            raise FirewallError("nft: Error: Could not process rule: No such file or directory")
        return None


@pytest.mark.parametrize("kernel_queue", [True, False])
def test_nftables_without_the_kernels_queue_uses_iptables_nfqueue_target(
    kernel_queue: bool,
) -> None:
    nft, rec = _Nft(queue=kernel_queue), Recorder(fail=["-S", "-C"])
    fw = Nftables(nft, flush_at_init=False, nfq=NFQ, run_command=rec)
    fw._start_nfq(NFQ)
    for exe in (IPT, IP6T):  # both families, as the inet table would have queued them
        made = [exe, *CHAIN_ARGS, "-A", "FWKNOP_NFQ", *RULE]
        assert (made in rec.calls) is not kernel_queue
    if not kernel_queue:  # the table the failed transaction left is removed
        assert nft.sent[-1] == {"nftables": [NfqSettings.nft_delete()]}


def test_nftables_refusing_for_another_reason_is_a_start_failure() -> None:
    def refuse(_document: dict[str, Any]) -> None:
        raise FirewallError("nft: Error: Operation not permitted")

    fw = Nftables(refuse, flush_at_init=False, nfq=NFQ, run_command=Recorder())
    with pytest.raises(FirewallError, match="not permitted"):
        fw._start_nfq(NFQ)


def test_a_backend_from_config_gets_the_nfq_settings(tmp_path: Path) -> None:
    config = _config(tmp_path, "FIREWALL_TYPE iptables\nENABLE_NFQ_CAPTURE Y\nNFQ_PORT 9000\n")
    fw = Iptables.from_config(config, Tools(Recorder()))
    assert fw.nfq is not None and fw.nfq.nfq.port == 9000


# -- the capture source's verdicts ------------------------------------------------------

SRC, DST = ipaddress.ip_address("198.18.0.2"), ipaddress.ip_address("198.18.0.1")


def _udp(payload: bytes, dport: int = 62201) -> bytes:
    total = 28 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0, SRC.packed, DST.packed)
    return ip + struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload


class _Queued:
    """A queued packet as NetfilterQueue hands it to its callback."""

    def __init__(self, data: bytes, hook: int) -> None:
        self.data, self.hook, self.verdict = data, hook, ""

    def get_payload(self) -> bytes:
        return self.data

    def accept(self) -> None:
        self.verdict = "accept"

    def drop(self) -> None:
        self.verdict = "drop"


def _source() -> NfqueueSource:
    source = NfqueueSource.__new__(NfqueueSource)  # no queue bound: the callback alone
    source._found, source.failures = [], []
    source._parse = ip_parser()
    return source


def test_a_packet_on_its_way_in_is_read_and_dropped_elsewhere_accepted() -> None:
    source = _source()
    incoming, forwarded = _Queued(_udp(b"A" * 200), 1), _Queued(_udp(b"B" * 200), 2)
    source._on_packet(incoming)
    source._on_packet(forwarded)
    assert (incoming.verdict, forwarded.verdict) == ("drop", "accept")  # as fwknopd
    assert [p.payload for p in source._found] == [b"A" * 200, b"B" * 200]
    assert isinstance(source._found[0], Packet) and source._found[0].src == SRC


def test_every_packet_gets_its_verdict_even_junk_and_muted_ones() -> None:
    source = _source()
    source._parse = ip_parser(lambda _payload, _src: MUTED)
    muted, junk = _Queued(_udp(b"A" * 200), 1), _Queued(b"\x00" * 3, 1)
    source._on_packet(muted)
    source._on_packet(junk)
    assert (muted.verdict, junk.verdict) == ("drop", "drop") and source._found == []


def test_firewalld_makes_the_chain_through_its_passthrough(tmp_path: Path) -> None:
    config = _config(tmp_path, "FIREWALL_TYPE firewalld\nENABLE_NFQ_CAPTURE Y\n")
    rec = Recorder(fail=["-S", "-C"])
    fw = Firewalld.from_config(config, Tools(rec))
    assert fw.nfq is not None
    fw.nfq.start()
    rule = ["-p", "udp", "-m", "udp", "--dport", "62201", "-j", "NFQUEUE", "--queue-num", "1"]
    assert rec.calls[-1] == ["/usr/bin/firewall-cmd", *PASSTHROUGH, "-t", "mangle",
                             "-A", "FWKNOP_NFQ", *rule]  # fmt: skip


def test_the_kernels_drops_of_our_queue_are_read_for_the_counters() -> None:
    # /proc/net/netfilter/nfnetlink_queue: queue, portid, waiting, copy mode, copy range,
    # queue_dropped, user_dropped, id sequence, 1
    text = (
        "    3  31337     0 2 65535     0     0        7  1\n"
        "    7  31338     2 2 65535    12     3      905  1\n"
    )
    assert queue_drops(text, 7) == 15 and queue_drops(text, 3) == 0
    assert queue_drops(text, 9) is None and queue_drops("", 7) is None


def test_a_packet_that_makes_the_screen_raise_is_dropped_alone_and_reported() -> None:
    def raising(_payload: bytes, _src: object) -> object:
        raise ValueError("a bug")

    source = _source()
    source._parse = ip_parser(raising)  # type: ignore[arg-type]
    bad, good = _Queued(_udp(b"A" * 200), 1), _Queued(_udp(b"B" * 200), 1)
    source._on_packet(bad)
    source._parse = ip_parser()
    source._on_packet(good)
    assert (bad.verdict, good.verdict) == ("drop", "drop")
    assert [type(e) for e in source.failures] == [ValueError]
    assert [p.payload for p in source._found] == [b"B" * 200]
