"""Knock sequences on a real kernel: the recorded fwknop 1.x client, and ours, open our fwknopd.

The server namespace has a default-drop input policy (nftables or iptables)
and TCP listeners behind it; our fwknopd sniffs its interface. The packets
the real 1.9.12 client sent (``tests/data/legacy/pcap``) are replayed from
the client namespace with their original timing, from raw sockets
(``replay_knocks.py``), with the recorded addresses (198.18.5.1 -> .2: the
encrypted ones name 198.18.5.1 as the address to open) added to both ends.
What a user would check: a TCP connect fails before the sequence and
succeeds after it, from the right source only; a replayed sequence (also
after a restart), a wrong key, a wrong order and an allow IP that is not the
sender leave the port closed; ``REQUIRE_OS`` lets the recorded client's and
the client namespace's own Linux SYNs in and keeps a SYN of another system
out; ``fwknopd --os`` prints a live SYN's fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers import packets as pk
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.legacy import LEGACY, case, os_fingerprint
from tests.helpers.netns import (
    DEADLINE,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    wait_for,
)
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import OurFwknopd

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.usefixtures("namespaces")]

OLD_CLIENT, OLD_SERVER = "198.18.5.1", "198.18.5.2"  # the recorded addresses
POLICIES = {"nftables": drop_policy_nft, "iptables": drop_policy_iptables}
# one stanza per recorded case, each opening a port of its own (1.x syntax, as 1.9.12 read it)
STANZAS = (
    # enc-key10-tcp22 asks tcp/22
    "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: fwknoptest;\nOPEN_PORTS: tcp/22;\n"
    # enc-user-13chars: 48 knocks, user longusername1, asks tcp/8080
    "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: longuserkey;\nOPEN_PORTS: tcp/8080;\n"
    "REQUIRE_USERNAME: longusername1;\n"
    # enc-rotate-proto: TCP and UDP knocks; asks tcp/22, which this stanza does not give
    "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: rotatekey;\nOPEN_PORTS: tcp/2201;\n"
    # shared-mixed: tcp, udp and icmp steps
    "SOURCE: ANY;\nSHARED_SEQUENCE: tcp/65531, udp/65533, icmp, tcp/65532, udp/65530;\n"
    "OPEN_PORTS: tcp/2202;\n"
    # enc-source-ip (allow IP 0.0.0.0), replayed from 198.18.0.2: opens for that address
    "SOURCE: ANY;\nENCRYPT_SEQUENCE;\nKEY: natkey-9876;\nOPEN_PORTS: tcp/2203;\n"
    # enc-drop-policy: 1 s between knocks, one SYN retransmitted
    "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: testkey1;\nOPEN_PORTS: tcp/2204;\n"
)
PORTS = (22, 8080, 2201, 2202, 2203, 2204)


def replay(pair: NetPair, case_id: str, *moved: str) -> None:
    """The case's capture, from the client namespace, with its timing (optionally moved)."""
    pcap = LEGACY / case(case_id)["pcap"]
    res = pair.client.python("replay_knocks.py", str(pcap), *moved, timeout=180)
    assert res.returncode == 0 and res.stdout.startswith(b"sent "), res.stderr.decode()


def reachable(pair: NetPair, port: int, source: str = OLD_CLIENT, host: str = OLD_SERVER) -> bool:
    """Whether a TCP connect from ``source`` to the server's ``port`` gets through."""
    return pair.tcp_open(port, host=host, source=source, timeout=0.5)


def opens(pair: NetPair, port: int, source: str = OLD_CLIENT, host: str = OLD_SERVER) -> bool:
    """Whether the port becomes reachable from ``source`` (one polling probe, DEADLINE s)."""
    return pair.wait_open(port, host=host, source=source)


def windows_syn(src: str, dst: str, port: int) -> bytes:
    """A SYN no Linux stack sends: Windows' options, window 65535, TTL 128."""
    return pk.tcp_syn(src, dst, port, sport=41000 + port, options=pk.WINDOWS_OPTIONS,
                      window=65535, ttl=128)  # fmt: skip


@pytest.fixture
def pair() -> NetPair:  # type: ignore[misc]
    with net_pair("kx") as made:
        made.add_addresses(f"{OLD_SERVER}/24", f"{OLD_CLIENT}/24")
        yield made


def _daemon(pair: NetPair, tmp_path: Path, access: str, backend: str = "nftables",
            extra: str = "") -> OurFwknopd:  # fmt: skip
    POLICIES[backend](pair.server)
    return OurFwknopd(
        pair.server, tmp_path / "d", interface=pair.server_if, access_conf=access,
        firewall=backend, conf_extra=extra,
    ).start(ready="knock sequences")  # fmt: skip


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_recorded_1x_sequences_open_their_ports_for_their_source_only(
    backend: str, pair: NetPair, tmp_path: Path
) -> None:
    pair.listen_tcp(*PORTS)
    server = _daemon(pair, tmp_path, STANZAS, backend)
    assert not any(reachable(pair, port) for port in PORTS)
    for case_id in ("enc-key10-tcp22", "enc-user-13chars", "enc-rotate-proto", "shared-mixed"):
        replay(pair, case_id)
    replay(pair, "enc-source-ip", pair.client_ip, pair.server_ip)
    for port in (22, 8080, 2201, 2202):
        assert opens(pair, port), f"{port}\n{server.log()}"
        assert not reachable(pair, port, source=pair.client_ip, host=OLD_SERVER)  # only .5.1
    assert opens(pair, 2203, source=pair.client_ip, host=pair.server_ip), server.log()
    assert not reachable(pair, 2203)  # the sequence asked for its sender, 198.18.0.2
    log = server.log()
    assert "asked for tcp/22, which OPEN_PORTS does not allow" in log  # rotate-proto's request
    assert "encrypted knock sequence from 198.18.5.1 (stanza #2, user longusername1" in log
    if backend == "nftables":  # once (31 s of knocks): the retransmitted SYN is no knock
        assert not reachable(pair, 2204)
        replay(pair, "enc-drop-policy")
        assert opens(pair, 2204), server.log()
    assert "refused" not in server.log()


def test_a_replayed_sequence_stays_closed_also_after_a_restart(
    pair: NetPair, tmp_path: Path
) -> None:
    pair.listen_tcp(22)
    access = "SOURCE: ANY;\nENCRYPT_SEQUENCE;\nKEY: fwknoptest;\nOPEN_PORTS: tcp/22;\n"
    server = _daemon(pair, tmp_path, access + "FW_ACCESS_TIMEOUT: 2;\n")
    replay(pair, "enc-key10-tcp22")
    assert opens(pair, 22), server.log()
    assert pair.wait_closed(22, host=OLD_SERVER, source=OLD_CLIENT)  # the grant expired
    replay(pair, "enc-key10-tcp22")
    assert server.wait_log("refused encrypted knock sequence from 198.18.5.1 (stanza #1): "
                           "replayed sequence")  # fmt: skip
    assert not reachable(pair, 22)
    server.stop()
    server.start(ready="knock sequences")
    mark = server.mark()
    replay(pair, "enc-key10-tcp22")
    assert server.wait_log("replayed sequence", since=mark), server.log()
    assert not reachable(pair, 22)


def test_a_wrong_key_and_a_wrong_order_stay_closed(pair: NetPair, tmp_path: Path) -> None:
    pair.listen_tcp(22, 2222)
    access = (
        # the recorded enc-key10-tcp22 was made with KEY fwknoptest
        "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: fwknoptesu;\nOPEN_PORTS: tcp/22;\n"
        # the recorded shared-tcp3 knocks 5501, 5502, 5504: this stanza wants them backwards
        "SOURCE: 198.18.5.0/24;\nSHARED_SEQUENCE: tcp/5504, tcp/5502, tcp/5501;\n"
        "OPEN_PORTS: tcp/2222;\n"
    )
    server = _daemon(pair, tmp_path, access)
    replay(pair, "enc-key10-tcp22")
    assert server.wait_log("refused encrypted knock sequence from 198.18.5.1 (stanza #1): "
                           "sequence decrypt failed"), server.log()  # fmt: skip
    replay(pair, "shared-tcp3")
    assert not reachable(pair, 22) and not reachable(pair, 2222)
    # the same SYNs in the stanza's order open it: the listener saw the wrong order and said no
    knocks = [(0.01 * i, pk.tcp_syn(OLD_CLIENT, OLD_SERVER, port, sport=42000 + port))
              for i, port in enumerate((5504, 5502, 5501))]  # fmt: skip
    res = pair.client.python("replay_knocks.py", str(pk.write_pcap(tmp_path / "r.pcap", knocks)))
    assert res.returncode == 0, res.stderr.decode()
    assert opens(pair, 2222), server.log()
    assert not reachable(pair, 22)
    # had the backwards replay opened it, its grant would be logged before this one
    assert server.log().count("shared knock sequence from 198.18.5.1 (stanza #2") == 1


# the SYN of a host of 1.x's os_sample.pkts run, which 1.x took for Windows 2000 SP4:
# 65535:128:1:48:M*,N,N,S (MSS, NOP, NOP, SACK permitted)
WIN2000_OPTIONS = bytes.fromhex("020405b401010402")


def test_require_os_with_the_recorded_fingerprints(pair: NetPair, tmp_path: Path) -> None:
    """The real 1.9.12 client's SYNs (Linux 6.18) against 1.x's own pf.os line for them."""
    recorded = os_fingerprint()["client_syn"]["fwknop_1x_with_custom_line"]
    pf_os = tmp_path / "pf.os"
    pf_os.write_text((LEGACY / "pf.os").read_text() + recorded["line"] + "\n")
    other = "198.18.5.3"
    pair.add_addresses("198.18.5.4/24", f"{other}/24")
    pair.listen_tcp(22, 2222)
    access = (
        "SOURCE: 198.18.5.0/24;\nSHARED_SEQUENCE: tcp/5501, tcp/5502, tcp/5504;\n"
        f"OPEN_PORTS: tcp/22;\nREQUIRE_OS: {recorded['os_key']};\n"
        "SOURCE: 198.18.5.0/24;\nSHARED_SEQUENCE: tcp/6601, tcp/6602;\nOPEN_PORTS: tcp/2222;\n"
        "REQUIRE_OS_REGEX: windows;\n"
    )
    server = _daemon(pair, tmp_path, access, extra=f"P0F_FILE {pf_os}\n")
    win = [(0.01 * i, pk.tcp_syn(other, OLD_SERVER, port, sport=43000 + port, window=65535,
                                 options=WIN2000_OPTIONS, ttl=128))
           for i, port in enumerate((5501, 5502, 5504, 6601, 6602))]  # fmt: skip
    res = pair.client.python("replay_knocks.py", str(pk.write_pcap(tmp_path / "w.pcap", win)))
    assert res.returncode == 0, res.stderr.decode()
    assert server.wait_log(
        f"refused shared knock sequence from {other} (stanza #1): OS fingerprint mismatch"
    ), server.log()
    assert opens(pair, 2222, source=other), server.log()  # Windows, as the regex asks
    assert not reachable(pair, 22, source=other)
    replay(pair, "shared-tcp3")  # the recorded Linux SYNs
    assert opens(pair, 22), server.log()
    assert not reachable(pair, 2222)


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "knock-allow-ip"])
def test_an_allow_ip_other_than_the_source_needs_knock_allow_ip(
    allowed: bool, pair: NetPair, tmp_path: Path
) -> None:
    """The recorded client asked to open tcp/65535 for 10.1.2.3 (1.x opened it unchecked)."""
    pair.add_addresses("10.1.2.1/24", "10.1.2.3/24")
    pair.listen_tcp(65535)
    access = (
        "SOURCE: 198.18.5.0/24;\nENCRYPT_SEQUENCE;\nKEY: otherip-key;\nOPEN_PORTS: tcp/65535;\n"
    )
    server = _daemon(pair, tmp_path, access + ("KNOCK_ALLOW_IP: 10.1.2.0/24;\n" if allowed else ""))
    replay(pair, "enc-allow-other-ip-port65535")
    if allowed:
        assert opens(pair, 65535, source="10.1.2.3", host="10.1.2.1"), server.log()
    else:
        assert server.wait_log("refused encrypted knock sequence from 198.18.5.1 (stanza #1): "
                               "allow IP is not the knock source"), server.log()  # fmt: skip
        assert not reachable(pair, 65535, source="10.1.2.3", host="10.1.2.1")
    assert not reachable(pair, 65535)  # never for the knocking host itself


def test_our_fwknop_knock_opens_our_fwknopd(pair: NetPair, tmp_path: Path) -> None:
    pair.listen_tcp(22, 2222)
    access = (
        "SOURCE ANY\nENCRYPT_SEQUENCE Y\nKEY knockE2Esecret\nOPEN_PORTS tcp/22\n"
        "REQUIRE_USERNAME alice\n"
        "SOURCE ANY\nSHARED_SEQUENCE tcp/5501, udp/5502, icmp, tcp/5504\nOPEN_PORTS tcp/2222\n"
        "MIN_TIME_DIFF 0.01\n"
    )
    server = _daemon(pair, tmp_path, access)
    client = OurClient(tmp_path / "client")
    key = client.key_file("old", "knockE2Esecret\n")
    res = client.run(
        ["knock", "-D", pair.server_ip, "-A", "tcp/22", "-s", "-U", "alice",
         "--key-format", "passphrase", "--key-file", str(key), "--time-delay", "0.02"],
        ns=pair.client,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    assert opens(pair, 22, source=pair.client_ip, host=pair.server_ip), server.log()
    res = client.run(
        ["knock", "-D", pair.server_ip, "--shared-sequence", "tcp/5501, udp/5502, icmp, tcp/5504",
         "--time-delay", "0.05"],
        ns=pair.client,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    assert opens(pair, 2222, source=pair.client_ip, host=pair.server_ip), server.log()
    assert not reachable(pair, 22)  # from 198.18.5.1: the sequences opened 198.18.0.2 only


def test_require_os_lets_the_real_linux_stack_in_and_a_crafted_syn_out(
    pair: NetPair, tmp_path: Path
) -> None:
    """The client namespace's own TCP stack (our client's connects) against a crafted SYN."""
    signatures = tmp_path / "linux.fp"
    signatures.write_text(
        "[tcp:request]\nlabel = s:unix:Linux:current (test)\n"
        "sig = *:64:0:*:mss*44,*:mss,sok,ts,nop,ws:df,id+:0\n"
    )
    pair.listen_tcp(2222)
    access = (
        "SOURCE ANY\nSHARED_SEQUENCE tcp/5501, tcp/5502\nOPEN_PORTS tcp/2222\n"
        "REQUIRE_OS_REGEX linux\n"
    )
    server = _daemon(pair, tmp_path, access, extra=f"P0F_FP_FILE {signatures}\n")
    # a Windows-like SYN (options, window, TTL 128) for each step, from 198.18.5.1
    crafted = [windows_syn(OLD_CLIENT, OLD_SERVER, port) for port in (5501, 5502)]
    capture = pk.write_pcap(tmp_path / "crafted.pcap", [(0.0, crafted[0]), (0.05, crafted[1])])
    res = pair.client.python("replay_knocks.py", str(capture))
    assert res.returncode == 0, res.stderr.decode()
    assert server.wait_log(
        "refused shared knock sequence from 198.18.5.1 (stanza #1): OS fingerprint mismatch"
    ), server.log()
    assert not reachable(pair, 2222)
    client = OurClient(tmp_path / "client")
    res = client.run(
        ["knock", "-D", pair.server_ip, "--shared-sequence", "tcp/5501, tcp/5502",
         "--time-delay", "0.05"],
        ns=pair.client,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    assert opens(pair, 2222, source=pair.client_ip, host=pair.server_ip), server.log()
    assert not reachable(pair, 2222)  # still closed for the crafted source


def test_require_os_in_an_spa_stanza_over_tcp_with_the_real_client(
    pair: NetPair, tmp_path: Path
) -> None:
    """Our extension: SPA over TCP (fwknop -P tcp) is judged by its connection's SYN."""
    keys = generate_keys()
    signatures = tmp_path / "linux.fp"
    signatures.write_text(
        "[tcp:request]\nlabel = s:unix:Linux:current (test)\n"
        "sig = *:64:0:*:mss*44,*:mss,sok,ts,nop,ws:df,id+:0\n"
    )
    pair.listen_tcp(22)
    access = f"SOURCE ANY\n{stanza_keys(keys)}REQUIRE_OS Linux:current (test)\n"
    drop_policy_nft(pair.server)
    pair.server.run(["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", "62201",
                     "accept"])  # fmt: skip
    server = OurFwknopd(
        pair.server, tmp_path / "d", interface=pair.server_if, access_conf=access,
        conf_extra=f"ENABLE_TCP_SERVER Y\nPCAP_FILTER tcp port 62201 or udp port 62201\n"
        f"P0F_FP_FILE {signatures}\n",
    ).start(ready="knock sequences")  # fmt: skip
    home = tmp_path / "home"
    real_knock(pair.client, home, pair.server_ip, "-A", "tcp/22", "-P", "udp",
               keys=key_args(keys), allow=pair.client_ip)  # fmt: skip
    assert server.wait_log("REQUIRE_OS: no TCP SYN was seen"), server.log()
    assert not reachable(pair, 22, source=pair.client_ip, host=pair.server_ip)
    real_knock(pair.client, home, pair.server_ip, "-A", "tcp/22", "-P", "tcp",
               keys=key_args(keys), allow=pair.client_ip)  # fmt: skip
    assert opens(pair, 22, source=pair.client_ip, host=pair.server_ip), server.log()


def test_os_mode_live_prints_the_client_stacks_syn(pair: NetPair, tmp_path: Path) -> None:
    """``fwknopd --os`` on PCAP_INTF: the fingerprint of a real connect's SYN, and its guess."""
    signatures = tmp_path / "linux.fp"
    signatures.write_text(
        "[tcp:request]\nlabel = s:unix:Linux:current (test)\n"
        "sig = *:64:0:*:mss*44,*:mss,sok,ts,nop,ws:df,id+:0\n"
    )
    drop_policy_nft(pair.server)
    daemon = OurFwknopd(
        pair.server, tmp_path / "d", interface=pair.server_if, access_conf="",
        conf_extra=f"P0F_FILE /dev/null\nP0F_FP_FILE {signatures}\n",
    )  # fmt: skip
    out, err = tmp_path / "os.out", tmp_path / "os.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = pair.server.popen(daemon.command("--os", "-C", "1"), stdout=stdout, stderr=stderr)

    def printed() -> bool:
        """Another connect (one more SYN), until --os has printed one: it listens a bit later."""
        if proc.poll() is None:
            pair.tcp_open(22, timeout=0.2)
        return proc.poll() is not None

    assert wait_for(printed), err.read_text()
    assert proc.wait(timeout=DEADLINE) == 0, err.read_text()
    header, first, guess = out.read_text().splitlines()[:3]
    assert header == f"fingerprinting TCP SYNs on {pair.server_if} (Ctrl-C to stop)"
    assert (
        first.startswith(f"{pair.client_ip}:") and f" -> {pair.server_ip}:22  p0f 4:64+0:" in first
    )
    assert guess.startswith("      p0f    Linux:current (test)")
