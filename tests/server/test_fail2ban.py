"""The fail2ban filter in ``contrib/fail2ban`` against what our fwknopd logs, with the real
``fail2ban-regex``.

Our daemon, knocked by the real client's packets (and by junk) from several
addresses, writes its log as under systemd (the bare message, as journald
stores it). Those messages are then read the two ways fail2ban reads them: a
syslog file (rsyslog's traditional format) and the journal (the systemd
backend's ``host ident[pid]: MESSAGE``). Every refusal of a hostile packet
must match, with its source, in order; the grant, the stanza lines in
fwknopd's words and our notices must not.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import GeneratedKeys, generate_keys
from tests.helpers.cfwknopd import fwknop_test_packet
from tests.helpers.knock import key_args, stanza_keys
from tests.helpers.netns import (
    CLIENT_IP,
    CLIENT_IP6,
    REAL_KNOCK_MARKS,
    SERVER_IP,
    SERVER_IP6,
    NetPair,
    drop_policy_nft,
    net_pair,
)
from tests.helpers.ourd import OurFwknopd
from tests.helpers.redis_server import free_port

pytestmark = REAL_KNOCK_MARKS

ROOT = Path(__file__).resolve().parents[2]
FILTER = ROOT / "contrib" / "fail2ban" / "filter.d" / "fwknopd.conf"
JAIL = ROOT / "contrib" / "fail2ban" / "jail.d" / "fwknopd.local"
COMMON = Path("/etc/fail2ban/filter.d/common.conf")
KEYS, OTHER = generate_keys(), generate_keys()
NEIGHBOUR, OUTSIDER = "198.18.0.3", "198.18.0.200"  # the client's other addresses
ACCESS = (
    f"SOURCE 198.18.0.0/25\n{stanza_keys(KEYS)}REQUIRE_USERNAME alice\nOPEN_PORTS tcp/22\n"
    "FW_ACCESS_TIMEOUT 30\n"
)


@pytest.fixture
def pair() -> Iterator[NetPair]:
    if shutil.which("fail2ban-regex") is None or not COMMON.exists():
        pytest.skip("fail2ban is not installed (apt-get install fail2ban)")
    with net_pair("fb") as made:
        yield made


def _fail2ban_regex(log: Path, filter_path: str) -> list[str]:
    """The address of each line the filter matches, in order (``fail2ban-regex -o row``)."""
    res = subprocess.run(
        ["fail2ban-regex", "-o", "row", str(log), filter_path],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return [line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("['")]


def _stopped(ours: OurFwknopd) -> list[str]:
    """Stop ``ours``; the messages it logged."""
    ours.stop()
    return [line for line in ours.log().splitlines() if line]


def _matched(messages: list[str], ours: OurFwknopd, tmp_path: Path) -> tuple[list[str], list[str]]:
    """The sources the filter finds in ``messages``, read from syslog and from the journal."""
    assert ours.proc is not None
    pid, host = ours.proc.pid, "gw"
    stamp = time.strftime("%b %e %H:%M:%S")
    syslog = tmp_path / "syslog"
    syslog.write_text("".join(f"{stamp} {host} fwknopd[{pid}]: {m}\n" for m in messages))
    journal = tmp_path / "journal"
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    journal.write_text("".join(f"{when} {host} fwknopd[{pid}]: {m}\n" for m in messages))
    # fail2ban reads filter.d/ of one config directory: ours beside its common.conf
    conf = tmp_path / "fail2ban" / "filter.d"
    conf.mkdir(parents=True)
    shutil.copy(FILTER, conf / "fwknopd.conf")
    (conf / "common.conf").symlink_to(COMMON)
    return (
        _fail2ban_regex(syslog, str(conf / "fwknopd.conf")),
        _fail2ban_regex(journal, f"{conf / 'fwknopd.conf'}[logtype=journal]"),
    )


def test_the_filter_finds_every_hostile_source_and_nothing_else(
    pair: NetPair, tmp_path: Path
) -> None:
    for address in (NEIGHBOUR, OUTSIDER):
        pair.client.run(["ip", "addr", "add", f"{address}/24", "dev", pair.client_if])
    drop_policy_nft(pair.server)
    home = tmp_path / "home"
    home.mkdir()

    def packet(*args: str, user: str = "alice", keys: GeneratedKeys = KEYS) -> str:
        wire, _fields = fwknop_test_packet(
            ["-D", SERVER_IP, "-a", CLIENT_IP, "-U", user, *args, *key_args(keys)],
            home,
        )
        return wire

    granted = packet("-A", "tcp/22")
    # (what is sent, from where, to where, the verdict it gets); None: granted
    hostile = [
        (packet("-A", "tcp/22", keys=OTHER), CLIENT_IP, SERVER_IP, "HMAC mismatch"),
        ("!" * 200, NEIGHBOUR, SERVER_IP, "not an SPA message"),
        (packet("-A", "tcp/22", "--time-offset-minus", "10min"), CLIENT_IP, SERVER_IP,
         "time difference is too great"),
        (packet("-A", "tcp/22", user="mallory"), CLIENT_IP, SERVER_IP, "Username in SPA data"),
        (packet("-A", "tcp/23"), CLIENT_IP, SERVER_IP, "protocol/port is not allowed"),
        (packet("-A", "tcp/22"), OUTSIDER, SERVER_IP, "no access stanza"),
        ("x" * 20, NEIGHBOUR, SERVER_IP, "shorter than 140"),
        ("U2FsdGVkX1" + packet("-A", "tcp/22"), NEIGHBOUR, SERVER_IP, "valid SPA message format"),
        (packet("-A", "tcp/22"), CLIENT_IP6, SERVER_IP6, "no access stanza"),
        (granted, CLIENT_IP, SERVER_IP, None),
        (granted, CLIENT_IP, SERVER_IP, "replayed packet"),
    ]  # fmt: skip
    # as under systemd: the bare message on stderr, which journald stores
    ours = OurFwknopd(
        pair.server, tmp_path / "d", interface=pair.server_if, access_conf=ACCESS,
        env={"JOURNAL_STREAM": "8:12345"},
    ).start()  # fmt: skip
    for wire, source, server, verdict in hostile:
        mark = ours.mark()
        pair.send_udp([wire], host=server, source=source)
        expected = verdict or "opening tcp/22"
        assert ours.wait_log(expected, since=mark), (expected, ours.log()[mark:])
    messages = _stopped(ours)
    expected = [source for _wire, source, _server, verdict in hostile if verdict is not None]
    assert _matched(messages, ours, tmp_path) == (expected, expected)  # syslog, journal
    # what it does not match includes fwknopd's own wording of the same refusals
    assert any(m.startswith("[198.18.0.2] (stanza #1) Error creating fko") for m in messages)
    assert any(m.startswith("SPA packet from 198.18.0.2 (user alice") for m in messages)


def test_a_valid_client_refused_for_want_of_redis_is_not_banned(
    pair: NetPair, tmp_path: Path
) -> None:
    drop_policy_nft(pair.server)
    home = tmp_path / "home"
    home.mkdir()
    ours = OurFwknopd(
        pair.server, tmp_path / "d", interface=pair.server_if, access_conf=ACCESS,
        env={"JOURNAL_STREAM": "8:12345"},
        # nothing listens there: Redis is down, and this gateway may not decide alone
        conf_extra=f"REPLAY_CACHE_URL redis://127.0.0.1:{free_port()}/0\nREPLAY_CACHE_REQUIRED Y\n",
    ).start()  # fmt: skip
    for _ in range(2):  # two knocks of the valid client, both refused: Redis is down
        wire, _fields = fwknop_test_packet(
            ["-D", SERVER_IP, "-a", CLIENT_IP, "-U", "alice", "-A", "tcp/22", *key_args(KEYS)],
            home,
        )
        mark = ours.mark()
        pair.send_udp([wire])
        assert ours.wait_log("shared replay cache unreachable", since=mark), ours.log()[mark:]
    junk = ours.mark()
    pair.send_udp(["!" * 200], source=CLIENT_IP)  # and the same source's junk still counts
    assert ours.wait_log("not an SPA message", since=junk)
    assert _matched(_stopped(ours), ours, tmp_path) == ([CLIENT_IP], [CLIENT_IP])


def test_the_jail_example_uses_the_filter_on_the_spa_port() -> None:
    jail = configparser.ConfigParser()
    jail.read(JAIL)
    section = jail["fwknopd"]
    assert (section["filter"], section["backend"]) == ("fwknopd", "systemd")
    assert (section["port"], section["protocol"]) == ("62201", "udp")
    assert int(section["maxretry"]) > 1  # a mistyped key must not ban a user at once
    assert "#logpath  = /var/log/syslog" in JAIL.read_text()  # the way without systemd
