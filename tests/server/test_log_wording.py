"""Our fwknopd logs what the real fwknopd 2.6.10 logs, in its words and order.

Both daemons run side by side in one server namespace, sniffing the same
interface, both with ``-v -v``; the real client's packets reach both. For
each packet, the lines fwknopd writes about it (the stanza lines, the
refusals, the ``-v -v`` dump) must come out of ours identically, in the same
order; ours adds its own verdict and grant lines, which are not fwknopd's.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from fwknop_core import GeneratedKeys, generate_keys
from tests.helpers.cfwknopd import RealFwknopd, fwknop_test_packet
from tests.helpers.knock import key_args, stanza_keys
from tests.helpers.netns import CLIENT_IP, REAL_KNOCK_MARKS, SERVER_IP, NetPair, net_pair
from tests.helpers.ourd import OurFwknopd
from tests.helpers.wait import LoggingDaemon

pytestmark = REAL_KNOCK_MARKS

OUTSIDER = "198.18.0.200"  # an address of the client's that no stanza's SOURCE takes
USER_KEYS, PORT_KEYS, ZERO_KEYS = generate_keys(), generate_keys(), generate_keys()


def _stanza(keys: GeneratedKeys, extra: str) -> str:
    return f"SOURCE 198.18.0.0/25\n{stanza_keys(keys)}{extra}\n\n"


# each refuses something the real client can ask for; #4 grants what #2 refuses
ACCESS = (
    _stanza(USER_KEYS, "REQUIRE_USERNAME bob")
    + _stanza(PORT_KEYS, "OPEN_PORTS tcp/80")
    + _stanza(ZERO_KEYS, "REQUIRE_SOURCE_ADDRESS Y")
    + _stanza(PORT_KEYS, "FW_ACCESS_TIMEOUT 3")
)

# what fwknopd logs about packets (its start-up and firewall lines are left out)
_PACKET_LINE = re.compile(
    r"^(\(stanza #|\[198\.18\.|No access data|Replay detected|SPA Packet: |SPA Field Values"
    r"|=====|\s*(Random Value|Username|Timestamp|FKO Version|Message Type|Message String"
    r"|Nat Access|Server Auth|Client Timeout|Digest Type|HMAC Type|Encryption Type"
    r"|Encryption Mode|Encoded Data|SPA Data Digest|HMAC|Final SPA Data): )"
)
_OUR_PREFIX = re.compile(r"^\S+ \S+ fwknopd\[\d+\]: ")


def packet_lines(text: str) -> list[str]:
    """The lines about packets in a log, without our time stamp and name prefix."""
    lines = []
    for raw in text.splitlines():
        line = _OUR_PREFIX.sub("", raw).rstrip()
        if _PACKET_LINE.match(line):
            # the seconds a stale packet is off depend on when each daemon read it;
            # fwknopd's replay line also names the packet first seen, which ours does not
            line = re.sub(r"\(\d+ seconds\)", "(N seconds)", line)
            lines.append(line.split(", Original source IP")[0])
    return lines


@pytest.fixture
def pair() -> NetPair:
    with net_pair("lw") as made:
        yield made  # type: ignore[misc]


def test_each_packet_is_logged_in_fwknopds_words_and_order(pair: NetPair, tmp_path: Path) -> None:
    pair.client.run(["ip", "addr", "add", f"{OUTSIDER}/24", "dev", pair.client_if])
    home = tmp_path / "home"
    home.mkdir()

    def packet(*args: str, keys: GeneratedKeys = PORT_KEYS, allow: bool = True) -> str:
        where = ["-a", CLIENT_IP] if allow else ["-s"]
        wire, _fields = fwknop_test_packet(
            ["-D", SERVER_IP, *where, "-U", "alice", *args, *key_args(keys)], home
        )
        return wire

    granted = packet("-A", "tcp/22")
    # (what is sent, from where, what fwknopd logs last about it, and ours)
    cases = [
        (packet("-A", "tcp/22", keys=USER_KEYS), None,
         "(stanza #4) Error creating fko context", "(stanza #1): Username in SPA data"),
        (granted, None, "(stanza #4) SPA Decode", "opening tcp/22 for 198.18.0.2"),
        (granted, None, "Replay detected", "replayed packet"),
        (packet("-A", "tcp/22", "--time-offset-minus", "10min"), None,
         "(stanza #4) SPA data time difference", "SPA data time difference is too great"),
        (packet("-A", "tcp/22", keys=ZERO_KEYS, allow=False), None,
         "(stanza #4) Error creating fko context", "0.0.0.0 allow IP while a source address"),
        (packet("--server-cmd", "echo hi"), None,
         "(stanza #4) SPA Command messages", "command messages are not allowed"),
        ("!" * 200, None, "error 4098", "characters outside base64"),
        ("U2FsdGVkX1" + packet("-A", "tcp/22"), None, "error 4096", "valid SPA message format"),
        (packet("-A", "tcp/22"), OUTSIDER, "No access data found", "no access stanza"),
    ]  # fmt: skip
    real = RealFwknopd(pair.server, tmp_path / "c", interface=pair.server_if, access_conf=ACCESS)
    ours = OurFwknopd(
        pair.server,
        tmp_path / "ours",
        interface=pair.server_if,
        access_conf=ACCESS,
        args=["-v", "-v"],
    )
    real.start()
    ours.start()
    for line in (f"Sniffing interface: {pair.server_if}", "PCAP filter is: 'udp port 62201'"):
        assert line in real.log() and line in ours.log(), line
    for wire, source, real_marker, our_marker in cases:
        marks = real.mark(), ours.mark()
        pair.send_udp([wire], source=source)
        for daemon, marker, since in ((real, real_marker, marks[0]), (ours, our_marker, marks[1])):
            assert daemon.wait_log(marker, since=since), (marker, daemon.log()[since:])
        _settle(real, real_marker, marks[0])
        theirs = packet_lines(real.log()[marks[0] :])
        mine = packet_lines(ours.log()[marks[1] :])
        assert theirs, real.log()[marks[0] :]
        assert mine == theirs, "\n".join(difflib.unified_diff(theirs, mine, lineterm=""))
    real.stop()
    ours.stop()


def _settle(daemon: LoggingDaemon, marker: str, since: int) -> None:
    """fwknopd writes a packet's lines one by one: wait for those after its marker line too."""
    # the marker is its last line about the packet but for the dump that may follow it
    if "SPA Decode" in marker:
        daemon.wait_log("Final SPA Data", since=since)
