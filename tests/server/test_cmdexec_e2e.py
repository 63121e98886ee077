"""Command messages and cycles on a real kernel: the real fwknop client knocks our fwknopd.

Each test puts our fwknopd in a server namespace and the real 2.6.10 client
in a client namespace. The commands are small scripts in a directory the
unprivileged user can read, writing what they saw (their user, groups,
arguments, environment) to a file the test reads back.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fwknop_core import generate_keys
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    NetPair,
    drop_policy_nft,
    net_pair,
    wait_for,
)
from tests.helpers.ourd import OurFwknopd
from tests.helpers.wait import DEADLINE

pytestmark = REAL_KNOCK_MARKS
# seconds a slow command may run, and a cycle stays open: what the test checks meanwhile
# (a second knock, a probe) must fit in it on a loaded machine
SLOW = 15

KEYS = generate_keys()
STANZA = "SOURCE ANY\n" + stanza_keys(KEYS)
RECORD = """#!/bin/sh
# record who ran us, with what: "<time> uid=U groups=G env=[E]: [arg] [arg]..."
out="$1"; shift
env=$(env | tr '\n' ' ')
{ printf '%s uid=%s groups=%s env=[%s]:' "$(date +%s.%N)" "$(id -u)" "$(id -G)" "$env"
  for a; do printf ' [%s]' "$a"; done; echo; } >> "$out"
"""


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("cx") as made:
        yield made


@pytest.fixture
def scripts() -> Iterator[Path]:
    """A directory everyone may read (unlike pytest's tmp_path), with ``rec.sh`` and ``out/``."""
    root = Path(tempfile.mkdtemp(prefix="fwknop-cmd-"))
    try:
        root.chmod(0o755)
        (root / "rec.sh").write_text(RECORD)
        (root / "rec.sh").chmod(0o755)
        (root / "out").mkdir(mode=0o777)
        (root / "out").chmod(0o1777)
        yield root
    finally:
        shutil.rmtree(root)


def _records(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _server(pair: NetPair, tmp_path: Path, access_conf: str, **options: Any) -> OurFwknopd:
    """Our fwknopd started in the pair's server namespace with this access.conf."""
    return OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=access_conf, **options
    ).start()


def _knock(pair: NetPair, tmp_path: Path, *args: str) -> str:
    return real_knock(
        pair.client, tmp_path / "home", SERVER_IP, *args, keys=key_args(KEYS), allow=CLIENT_IP
    )


def test_the_real_clients_server_cmd_runs_as_the_configured_user(
    pair: NetPair, tmp_path: Path, scripts: Path
) -> None:
    server = _server(
        pair,
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC Y\nCMD_EXEC_USER nobody\n",
        firewall="log",
    )
    out = scripts / "out" / "who"
    command = f"{scripts}/rec.sh {out} 'a b' $HOME"
    _knock(pair, tmp_path, "--server-cmd", command)
    assert wait_for(lambda: _records(out)), server.log()
    (line,) = _records(out)
    # as nobody, its group only, nothing in the environment (but what sh sets itself, as
    # under the real fwknopd), in /, the words split as fwknopd splits them
    assert line.split(" ", 1)[1] == "uid=65534 groups=65534 env=[PWD=/ ]: ['a] [b'] [$HOME]"
    where = "[198.18.0.2] (stanza #1)"
    assert server.wait_log(f"{where} CMD_EXEC: command returned 0, pid_status: 0")
    log = server.log()
    assert f"{where} Processing SPA Command message: command='{command}'." in log
    assert (
        f"{where} Running command '{command}' setuid/setgid user/group to nobody/nobody "
        "(UID=65534,GID=65534)" in log
    )
    assert server.stop() == 0


def test_the_clients_words_come_after_sudos_options(
    pair: NetPair, tmp_path: Path, scripts: Path
) -> None:
    # SUDO_EXE is a recorder: what sudo would have been given, word for word
    out = scripts / "out" / "sudo"
    server = _server(
        pair,
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC Y\nENABLE_CMD_SUDO_EXEC Y\nCMD_SUDO_EXEC_USER nobody\n",
        firewall="log",
        conf_extra=f"SUDO_EXE {scripts}/rec.sh {out}\n",
    )
    _knock(pair, tmp_path, "--server-cmd", "-u root /bin/sh")
    assert wait_for(lambda: _records(out), timeout=15), server.log()
    (line,) = _records(out)
    # fwknopd 2.6.10 gives sudo "-u nobody -u root /bin/sh": the last -u wins, root
    assert line.split(": ", 1)[1] == "[-u] [nobody] [--] [-u] [root] [/bin/sh]"


def test_an_unauthorised_command_is_refused_and_logged(
    pair: NetPair, tmp_path: Path, scripts: Path
) -> None:
    server = _server(
        pair,
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC N\n",
        firewall="log",
    )
    out = scripts / "out" / "never"
    _knock(pair, tmp_path, "--server-cmd", f"{scripts}/rec.sh {out}")
    assert server.wait_log(
        "refused SPA packet from 198.18.0.2 udp/62201 (stanza #1): command messages are not allowed"
    ), server.log()
    # and only that: the packet was taken apart, nothing was run
    _knock(pair, tmp_path, "-A", "tcp/22")  # a knock after it is handled: the command is not
    assert server.wait_log("opening tcp/22 for 198.18.0.2")
    assert not out.exists()
    assert "Running command" not in server.log()


def test_a_slow_command_never_delays_other_packets_and_is_killed_on_time(
    pair: NetPair, tmp_path: Path
) -> None:
    drop_policy_nft(pair.server)
    pair.listen_tcp(22)
    server = _server(
        pair,
        tmp_path,
        STANZA + "ENABLE_CMD_EXEC Y\n",
        conf_extra=f"CMD_EXEC_TIMEOUT {SLOW}\n",
    )
    # a duration no other process on this machine runs with: ps in the namespace sees them all
    slow = f"/bin/sleep 60.{os.getpid()}{secrets.randbelow(10**6):06d}"
    _knock(pair, tmp_path, "--server-cmd", slow)
    assert server.wait_log(f"Running command '{slow}'")
    _knock(pair, tmp_path, "-A", "tcp/22")  # while the command runs
    assert pair.wait_open(22)
    assert "CMD_EXEC: command" not in server.log()  # opened while the command still runs
    assert server.wait_log(
        f"[198.18.0.2] (stanza #1) CMD_EXEC: command timed out after {SLOW} s and was killed",
        timeout=SLOW + DEADLINE,
    )
    procs = pair.server.run(["ps", "-eo", "args"]).stdout.decode()
    assert slow not in procs


def test_a_command_cycle_opens_the_firewall_and_closes_it_on_its_timer(
    pair: NetPair, tmp_path: Path, scripts: Path
) -> None:
    """The cycle's own commands are the firewall: nft adds and deletes an element."""
    drop_policy_nft(pair.server)
    pair.server.run(
        ["nft", "-f", "-"],
        stdin=b"add set inet filter cycle { type ipv4_addr . inet_service; }\n"
        b"add rule inet filter input ip saddr . tcp dport @cycle accept\n",
    )
    pair.listen_tcp(22)
    out = scripts / "out" / "cycle"
    nft = "/usr/sbin/nft VERB element inet filter cycle { $IP . $PORT }"
    server = _server(
        pair,
        tmp_path,
        (
            STANZA
            + f"CMD_CYCLE_OPEN {nft.replace('VERB', 'add')}\n"
            + f"CMD_CYCLE_CLOSE {nft.replace('VERB', 'delete')}\n"
            + f"CMD_CYCLE_TIMER {SLOW}\n"
            # a second cycle stanza for another source records its variables
            + f"SOURCE 198.18.0.0/24\n{stanza_keys(KEYS)}"
            + f"CMD_CYCLE_OPEN {scripts}/rec.sh {out} open $IP $PORT $PROTO $CLIENT_TIMEOUT\n"
            + f"CMD_CYCLE_CLOSE {scripts}/rec.sh {out} close $SRC $PORT\nCMD_CYCLE_TIMER 2\n"
        ).replace("SOURCE ANY", "SOURCE 198.18.0.2", 1),
    )
    assert not pair.tcp_open(22)
    _knock(pair, tmp_path, "-A", "tcp/22")
    assert pair.wait_open(22), server.log()
    where = "[198.18.0.2] (stanza #1)"
    assert server.wait_log(
        f"{where} Running CMD_CYCLE_CLOSE command in {SLOW} seconds: "
        "/usr/sbin/nft delete element inet filter cycle { 198.18.0.2 . 22 }"
    )
    assert pair.wait_closed(22, timeout=SLOW + DEADLINE)
    assert server.wait_log(f"{where} CMD_CYCLE_CLOSE: command returned 0, pid_status: 0")
    assert "nft: " not in server.log()  # neither nft command complained
    # the variables, from another address of the second stanza's network (spoofed), asking
    # for a timeout of its own (longer than CMD_CYCLE_TIMER, which caps it: fwknopd would wait
    # the client's 900 s) and for the packet's source address (-s) to be opened
    real_knock(
        pair.client, tmp_path / "home", SERVER_IP, "-A", "udp/53", "-f", "900", "-s",
        "-P", "udpraw", "-Q", "198.18.0.9", keys=key_args(KEYS),
    )  # fmt: skip
    assert wait_for(lambda: len(_records(out)) == 2), server.log()
    opened, closed = _records(out)
    assert opened.split(": ", 1)[1] == "[open] [198.18.0.9] [53] [17] [2]"
    assert closed.split(": ", 1)[1] == "[close] [198.18.0.9] [53]"
    # on its timer (CMD_CYCLE_TIMER, 2 s): not before, and not at the client's 900 s or at
    # FW_ACCESS_TIMEOUT's 30 s; the margin above is for two shell scripts on a loaded machine
    assert 1.5 <= float(closed.split()[0]) - float(opened.split()[0]) < 15
