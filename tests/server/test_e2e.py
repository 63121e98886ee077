"""Our fwknopd on a real kernel, knocked by the real fwknop 2.6.10 client.

Each test builds a server and a client namespace joined by a veth pair, puts
a default-drop input policy on the server (nftables or iptables), starts a
TCP listener behind it and our fwknopd in front of it, and proves what a
user would check: a TCP connect from the client fails before the knock,
succeeds after it, and fails again once the access timeout has passed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import SpaMessage, build_packet, generate_keys
from tests.helpers.cfwknopd import FWKNOP, RealFwknopd, fwknop_test_packet
from tests.helpers.gpghome import GpgHomes, build_homes, stop_agents
from tests.helpers.netns import (
    CLIENT_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    SERVER_IP6,
    NetPair,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd, nft_set
from tests.helpers.pcapfile import write_udp_pcap
from tests.helpers.vectors import CLIENT_GPG_KEY, SERVER_GPG_KEY
from tests.helpers.wait import DEADLINE

pytestmark = REAL_KNOCK_MARKS
# seconds a grant that the test inspects while it is open lasts: the checks made meanwhile
# (a probe, an --fw-list process) must fit in it on a loaded machine
SHORT_GRANT = 10

KEYS = generate_keys()
KEY_ARGS = [
    "--key-base64-rijndael",
    KEYS.rijndael.to_base64(),
    "--key-base64-hmac",
    KEYS.hmac.to_base64(),
]
STANZA = (
    f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\nHMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\n"
)
POLICIES = {"nftables": drop_policy_nft, "iptables": drop_policy_iptables}


def knock(pair: NetPair, home: Path, *args: str, keys: list[str] = KEY_ARGS) -> str:
    """The real client, in the client namespace, with an empty rc file of its own."""
    home.mkdir(exist_ok=True)
    rc = home / "fwknoprc"
    rc.write_text("[default]\n")
    rc.chmod(0o600)
    argv = [FWKNOP, "--rc-file", str(rc), "--no-save-args", "-D", SERVER_IP, *keys]
    if not any(a in args for a in ("-a", "-s", "-R")):
        argv += ["-a", CLIENT_IP]
    res = pair.client.run([*argv, *args], env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    return res.stdout.decode() + res.stderr.decode()


def opens(
    pair: NetPair, port: int = 22, *, timeout: float = DEADLINE, host: str | None = None
) -> bool:
    """Whether the port becomes reachable from the client within ``timeout``."""
    return pair.wait_open(port, host=host, timeout=timeout)


def closes(pair: NetPair, port: int = 22, *, timeout: float = SHORT_GRANT + DEADLINE) -> bool:
    """Whether the port stops being reachable within ``timeout``."""
    return pair.wait_closed(port, timeout=timeout)


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("sv") as made:
        yield made


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_the_real_client_opens_a_port_for_the_access_timeout(
    backend: str, pair: NetPair, tmp_path: Path
) -> None:
    POLICIES[backend](pair.server)
    pair.listen_tcp(22)
    server = OurFwknopd(
        pair.server,
        tmp_path,
        interface=pair.server_if,
        access_conf=STANZA + f"FW_ACCESS_TIMEOUT {SHORT_GRANT}\n",
        firewall=None,  # detected: the policy decides
    ).start()
    assert f"firewall: {backend} (detected" in server.log()
    assert not pair.tcp_open(22)
    knock(pair, tmp_path / "home", "-A", "tcp/22")
    assert opens(pair)
    assert server.wait_log(f"opening tcp/22 for 198.18.0.2 for {SHORT_GRANT} s")
    listing = subprocess.run(
        pair.server.argv(server.command("--fw-list")), capture_output=True, text=True, check=True
    ).stdout
    assert "198.18.0.2" in listing
    assert closes(pair)  # the timeout passed: closed again, by the kernel or by our timer
    status = server.stop()
    assert status == 0
    assert "Shutting Down fwknopd." in server.log()


def test_replayed_packets_are_refused_also_after_a_restart(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    (tmp_path / "home").mkdir()
    wire, _fields = fwknop_test_packet(
        ["-A", "tcp/22", "-a", CLIENT_IP, "-D", SERVER_IP, *KEY_ARGS], tmp_path / "home"
    )
    server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA)
    server.start()
    pair.send_udp([wire, wire], interval=0.3)
    assert server.wait_log(
        "refused SPA packet from 198.18.0.2 udp/62201 (stanza #1): replayed packet"
    )
    assert server.log().count("opening tcp/22") == 1
    server.stop()
    server.start()
    pair.send_udp([wire])
    assert server.wait_log("replayed packet", count=2)
    assert server.log().count("opening tcp/22") == 1
    # a daemon killed right after a grant: the digest was on disk before the rule
    second, _fields = fwknop_test_packet(
        ["-A", "tcp/22", "-a", CLIENT_IP, "-D", SERVER_IP, *KEY_ARGS], tmp_path / "home"
    )
    pair.send_udp([second])
    assert server.wait_log("opening tcp/22", count=2)
    server.kill()
    server.start()
    assert "digest(s) recovered from" in server.log()
    pair.send_udp([second])
    assert server.wait_log("replayed packet", count=3)
    assert server.log().count("opening tcp/22") == 2


def test_refusals_name_the_source_and_the_reason(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    pair.listen_tcp(22, 23)
    conf = (
        f"SOURCE 198.18.0.0/25\nKEY_BASE64 {KEYS.rijndael.to_base64()}\n"
        f"HMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\nREQUIRE_USERNAME alice\nOPEN_PORTS tcp/22\n"
    )
    server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=conf).start()
    home = tmp_path / "home"
    other = generate_keys()  # keys of someone else entirely
    wrong_keys = ["--key-base64-rijndael", other.rijndael.to_base64(),
                  "--key-base64-hmac", other.hmac.to_base64()]  # fmt: skip
    cases = [
        (["-U", "alice", "-A", "tcp/22"], wrong_keys,
         "from 198.18.0.2 udp/62201 (stanza #1): HMAC mismatch"),
        (["-U", "alice", "-A", "tcp/22", "--time-offset-minus", "10m"], KEY_ARGS,
         "(stanza #1): SPA data time difference is too great: 6"),
        (["-U", "bob", "-A", "tcp/22"], KEY_ARGS,
         "(stanza #1): Username in SPA data: (bob) does not match required username: alice"),
        (["-U", "alice", "-A", "tcp/23"], KEY_ARGS,
         "(stanza #1): a requested protocol/port is not allowed: tcp/23"),
        (["-U", "alice", "-A", "tcp/22", "-P", "udpraw", "-Q", "198.18.0.200"], KEY_ARGS,
         "refused SPA packet from 198.18.0.200 udp/62201: no access stanza for this source"),
    ]  # fmt: skip
    for args, keys, expected in cases:
        knock(pair, home, *args, keys=keys)
        assert server.wait_log(expected), (expected, server.log())
    assert not pair.tcp_open(22) and not pair.tcp_open(23)
    assert "elements" not in nft_set(pair.server)  # nothing was opened by any of them
    knock(pair, home, "-U", "alice", "-A", "tcp/22")
    assert opens(pair)
    assert not pair.tcp_open(23)


def test_fwknopds_own_files_start_unchanged_and_its_digests_are_kept(
    pair: NetPair, tmp_path: Path
) -> None:
    """Stop the C fwknopd, start ours on the same fwknopd.conf and access.conf: still works."""
    drop_policy_iptables(pair.server)
    pair.listen_tcp(22)
    (tmp_path / "home").mkdir()
    first, _ = fwknop_test_packet(["-A", "tcp/22", "-a", CLIENT_IP, "-D", SERVER_IP, *KEY_ARGS],
                                  tmp_path / "home")  # fmt: skip
    c = RealFwknopd(pair.server, tmp_path / "c", interface=pair.server_if, access_conf=STANZA)
    c.start()
    pair.send_udp([first])
    assert c.wait_granted(22), c.log()
    c.stop()
    assert (tmp_path / "c" / "digest.cache").exists()
    ours = OurFwknopd.on_files(pair.server, tmp_path / "ours", c.conf, c.access).start()
    assert "firewall: iptables (detected" in ours.log()
    pair.send_udp([first])  # accepted by the C daemon: a replay for ours too
    assert ours.wait_log("replayed packet")
    assert "imported 1 digests from fwknopd's cache" in ours.log()
    knock(pair, tmp_path / "home", "-A", "tcp/22")
    assert opens(pair)
    rules = pair.server.run(["iptables-save"]).stdout.decode()
    assert (
        "-A FWKNOP_INPUT -s 198.18.0.2/32 -p tcp -m tcp --dport 22 -m comment --comment _exp_"
        in rules
    )
    ours.stop()
    assert "FWKNOP_INPUT" not in pair.server.run(["iptables-save"]).stdout.decode()  # flushed


def test_a_killed_daemons_grant_still_expires_on_time(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    pair.listen_tcp(22)
    server = OurFwknopd(
        pair.server,
        tmp_path,
        interface=pair.server_if,
        access_conf=STANZA + f"FW_ACCESS_TIMEOUT {SHORT_GRANT}\n",
    ).start()
    knock(pair, tmp_path / "home", "-A", "tcp/22")
    assert opens(pair)
    server.kill()  # no clean-up, no timers
    assert pair.tcp_open(22)
    assert closes(pair)  # the kernel removed the set element on time


def test_sighup_with_a_broken_config_keeps_serving_and_keeps_grants(
    pair: NetPair, tmp_path: Path
) -> None:
    drop_policy_nft(pair.server)
    pair.listen_tcp(22, 2222)
    server = OurFwknopd(
        pair.server,
        tmp_path,
        interface=pair.server_if,
        access_conf=STANZA + "FW_ACCESS_TIMEOUT 60\n",
    ).start()
    home = tmp_path / "home"
    knock(pair, home, "-A", "tcp/22")
    assert opens(pair)
    good = server.access.read_text()
    server.access.write_text(good + "SOURCE 10.0.0.0/99\nKEY_BASE64 x\n")
    server.signal(signal.SIGHUP)
    assert server.wait_log("reload refused, keeping the running configuration")
    assert f"{server.access}:5: SOURCE: '10.0.0.0/99' is not ANY" in server.log()
    knock(pair, home, "-A", "tcp/2222")  # still serving with the old policy
    assert opens(pair, 2222)
    server.access.write_text(good.replace("FW_ACCESS_TIMEOUT 60", "FW_ACCESS_TIMEOUT 30"))
    server.signal(signal.SIGHUP)
    assert server.wait_log("configuration reloaded: 1 access stanza(s); 2 grant(s) stay open")
    assert pair.tcp_open(22) and pair.tcp_open(2222)  # a reload never drops open grants


def test_udp_server_mode_and_an_ipv6_client(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server, allow_udp=[62201])
    pair.listen_tcp(22)
    server = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA, args=["-U"]
    ).start()
    assert "UDP server on port 62201" in server.log()
    knock(pair, tmp_path / "home", "-A", "tcp/22")
    assert opens(pair)
    # IPv6: our core's packet asks for the packet's source (0.0.0.0), sent over IPv6
    wire = build_packet(
        SpaMessage.access_request("0.0.0.0", "tcp/22", username="root"),
        KEYS.rijndael,
        hmac_key=KEYS.hmac,
    )
    assert not pair.tcp_open(22, host=SERVER_IP6)
    pair.send_udp([wire], host=SERVER_IP6)
    assert opens(pair, host=SERVER_IP6)
    assert "2001:db8::2 . tcp . 22" in nft_set(pair.server, "fwknop_in6")


def test_tcp_clients_with_fwknopds_tcp_server(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    pair.server.run(["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", "62201",
                     "accept"])  # fmt: skip
    pair.listen_tcp(22)
    server = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA,
        conf_extra="ENABLE_TCP_SERVER Y\nPCAP_FILTER tcp port 62201\n",
    ).start()  # fmt: skip
    assert "Kicking off TCP server to listen on port 62201." in server.log()
    assert not pair.tcp_open(22)
    out = knock(pair, tmp_path / "home", "-A", "tcp/22", "-P", "tcp")
    assert opens(pair), out + server.log()


def test_a_capture_file_is_processed_like_live_traffic(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    good = build_packet(
        SpaMessage.access_request(CLIENT_IP, "tcp/22", username="u", now=1000),
        KEYS.rijndael,
        hmac_key=KEYS.hmac,
    )
    capture = tmp_path / "spa.pcap"
    write_udp_pcap(capture, [b"A" * 200, good.encode()], CLIENT_IP, SERVER_IP)
    server = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA,
        conf_extra="FLUSH_NFT_AT_EXIT N\n",
    )  # fmt: skip
    assert server.run_once("--pcap-file", str(capture), "--exit-after-pcap-file") == 0
    log = server.log()
    # a capture from the past: packet aging is off unless the file says otherwise, as fwknopd
    assert "opening tcp/22 for 198.18.0.2" in log
    assert "HMAC mismatch" in log
    assert "198.18.0.2 . tcp . 22" in nft_set(pair.server)


def test_systemd_readiness_reload_and_stop(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(DEADLINE)
    server = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA,
        env={"NOTIFY_SOCKET": str(notify_path)},
    ).start()  # fmt: skip
    messages = [sock.recv(4096).decode()]
    assert messages[0].startswith("READY=1\nSTATUS=sniffing")
    server.signal(signal.SIGHUP)
    messages += [sock.recv(4096).decode(), sock.recv(4096).decode()]
    assert messages[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert messages[2] == "READY=1\nSTATUS=configuration reloaded"
    # a refused reload: READY=1 again (else systemd waits in "reloading")
    server.access.write_text(server.access.read_text() + "SOURCE 10.0.0.0/99\n")
    server.signal(signal.SIGHUP)
    assert sock.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=reload refused: configuration has errors"
    server.signal(signal.SIGTERM)
    assert sock.recv(4096).decode() == "STOPPING=1"
    sock.close()


def test_status_restart_and_kill_find_the_daemon_by_its_pid_file(
    pair: NetPair, tmp_path: Path
) -> None:
    drop_policy_nft(pair.server)
    server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA)
    server.start()
    assert server.proc is not None

    def action(flag: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            pair.server.argv(server.command(flag)), capture_output=True, text=True, check=False
        )

    status = action("-S")
    assert (status.returncode, status.stdout.strip()) == (
        0, f"Detected fwknopd is running (pid={server.proc.pid}).",
    )  # fmt: skip
    second = subprocess.run(
        pair.server.argv(server.command("-f")), capture_output=True, text=True, check=False,
        timeout=30,
    )  # fmt: skip
    assert second.returncode == 1 and "already running" in second.stderr
    assert action("-R").returncode == 0
    assert server.wait_log("Got SIGHUP. Re-reading configs.")
    killed = action("-K")
    assert killed.stdout.strip() == f"Killed fwknopd (pid={server.proc.pid})."
    assert server.proc.wait(timeout=DEADLINE) == 0
    assert action("-S").returncode == 1


@pytest.mark.gpg
def test_gnupg_packets_from_the_real_client(pair: NetPair, tmp_path: Path) -> None:
    homes: GpgHomes = build_homes(tmp_path / "gnupg")
    try:
        drop_policy_nft(pair.server)
        pair.listen_tcp(22)
        conf = (
            f"SOURCE ANY\nGPG_HOME_DIR {homes.server}\nGPG_DECRYPT_ID {SERVER_GPG_KEY}\n"
            f"GPG_ALLOW_NO_PW Y\nGPG_REMOTE_ID {CLIENT_GPG_KEY[-8:]}\n"
            f"HMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\n"
        )
        server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=conf)
        server.start()
        gpg = [
            "--gpg-encryption", "--gpg-recipient-key", SERVER_GPG_KEY,
            "--gpg-signer-key", CLIENT_GPG_KEY, "--gpg-no-signing-pw",
            "--gpg-home-dir", str(homes.client), "--key-base64-hmac", KEYS.hmac.to_base64(),
        ]  # fmt: skip
        knock(pair, tmp_path / "home", "-A", "tcp/22", keys=gpg)
        assert opens(pair)
    finally:
        stop_agents(homes)


def test_a_valid_packet_gets_through_a_junk_flood(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    pair.listen_tcp(22)
    server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA)
    server.start()
    flood = pair.client.popen(["python3", "-c", _FLOOD, SERVER_IP, "20000"])  # bounded
    knock(pair, tmp_path / "home", "-A", "tcp/22")
    assert opens(pair)
    assert flood.wait(timeout=60) == 0
    server.signal(signal.SIGUSR1)
    assert server.wait_log("counters: ")
    assert "granted=1" in server.log()


_FLOOD = """
import os, socket, sys
host, count = sys.argv[1], int(sys.argv[2])
junk = [b"8" + os.urandom(120).hex().encode()[:203] for _ in range(64)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(junk[i % 64], (host, 62201))
"""


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_a_restart_keeps_valid_grants_and_drops_expired_ones(
    backend: str, pair: NetPair, tmp_path: Path
) -> None:
    POLICIES[backend](pair.server)
    pair.listen_tcp(22, 2222)
    keep = "FLUSH_IPT_AT_INIT N\nFLUSH_IPT_AT_EXIT N\n"  # fwknopd's names; nftables follows them
    short = STANZA.replace("SOURCE ANY", "SOURCE ANY\nOPEN_PORTS tcp/22,tcp/2222") + (
        f"FW_ACCESS_TIMEOUT {SHORT_GRANT}\nMAX_FW_TIMEOUT 120\n"
    )
    server = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=short, conf_extra=keep,
        firewall=backend,
    ).start()  # fmt: skip
    home = tmp_path / "home"
    knock(pair, home, "-A", "tcp/2222", "-f", "90")  # 90 s
    assert opens(pair, 2222)
    knock(pair, home, "-A", "tcp/22")  # SHORT_GRANT: the daemon must stop before it ends
    assert server.wait_log(f"opening tcp/22 for 198.18.0.2 for {SHORT_GRANT} s")
    granted_by = time.time()
    assert server.stop() == 0
    assert pair.tcp_open(2222)  # not flushed at exit
    # the short grant runs out while no daemon runs (its expiry is a whole second)
    time.sleep(max(0.0, granted_by + SHORT_GRANT + 1.5 - time.time()))
    # nftables closes it on time by itself; an iptables rule waits for a daemon to remove it
    assert pair.tcp_open(22) is (backend == "iptables")
    server.start()
    assert server.wait_log("grant(s) still open from before")
    assert pair.tcp_open(2222) and not pair.tcp_open(22)
    if backend == "iptables":  # nobody removed the expired rule while we were down: we do
        rules = pair.server.run(["iptables-save"]).stdout.decode()
        assert "--dport 22 " not in rules and "--dport 2222 " in rules
    flush = subprocess.run(
        pair.server.argv(server.command("--fw-flush")), capture_output=True, text=True, check=False
    )
    assert flush.returncode == 0, flush.stderr
    assert not pair.tcp_open(2222)  # --fw-flush removed everything we made


def test_background_mode_detaches_and_is_found_by_its_pid_file(
    pair: NetPair, tmp_path: Path
) -> None:
    drop_policy_nft(pair.server)
    server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA)
    pid_file = tmp_path / "run" / "fwknopd.pid"
    started = subprocess.run(
        pair.server.argv(server.command()), capture_output=True, text=True, check=False, timeout=30
    )

    def action(flag: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            pair.server.argv(server.command(flag)), capture_output=True, text=True, check=False
        )

    pid = 0
    try:
        assert started.returncode == 0  # the parent returns once it has forked
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        pid = int(pid_file.read_text())
        assert action("-S").stdout.strip() == f"Detected fwknopd is running (pid={pid})."
        assert action("-K").stdout.strip() == f"Killed fwknopd (pid={pid})."
        assert wait_for(lambda: not pid_file.exists())
        assert action("-S").returncode == 1
    finally:  # it detached from us: stop it by its PID if a check above failed
        if not pid and pid_file.exists():
            pid = int(pid_file.read_text() or 0)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_daemon_exits_when_its_interface_goes_away(pair: NetPair, tmp_path: Path) -> None:
    """EXIT_AT_INTF_DOWN (default Y): exit for systemd to restart us; never spin on the error."""
    drop_policy_nft(pair.server)
    server = OurFwknopd(pair.server, tmp_path, interface=pair.server_if, access_conf=STANZA)
    server.start()
    assert server.proc is not None
    pair.server.run(["ip", "link", "del", pair.server_if])
    assert server.proc.wait(timeout=DEADLINE) == 1
    assert "capture failed: [Errno 100] Network is down" in server.log()
