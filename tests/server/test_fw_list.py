"""``--fw-list`` prints what fwknopd 2.6.10 prints: its chains as ``iptables -L --line-numbers -n``.

Scripts read each grant's source, port and ``/* _exp_<epoch> */`` from
those lines. The real fwknopd and ours each open tcp/22 and udp/53 for the
real client in a namespace; their listings must be the same but for the
epochs. nftables has no chain of ours to list: its sets are shown in the
same shape.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cfwknopd import FWKNOPD, RealFwknopd
from tests.helpers.knock import real_knock
from tests.helpers.netns import REAL_KNOCK_MARKS, NetPair, drop_policy_nft, net_pair
from tests.helpers.ourd import OurFwknopd

pytestmark = REAL_KNOCK_MARKS

ACCESS = "SOURCE ANY\nKEY fwknoptest\nFW_ACCESS_TIMEOUT 60\n"
KEY = ["--key-rijndael", "fwknoptest"]


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("fl") as made:
        yield made


def _knock(pair: NetPair, home: Path) -> None:
    for ports in ("tcp/22", "udp/53"):
        real_knock(pair.client, home, pair.server_ip, "-A", ports, keys=KEY, allow=pair.client_ip)


def _epochs_out(listing: str) -> str:
    return re.sub(r"_exp_\d+", "_exp_N", listing)


def test_the_iptables_listing_is_fwknopds(pair: NetPair, tmp_path: Path) -> None:
    real = RealFwknopd(pair.server, tmp_path / "c", interface=pair.server_if, access_conf=ACCESS)
    real.start()
    _knock(pair, tmp_path / "home")
    assert real.wait_granted(22) and real.wait_granted(53, proto="udp"), real.log()
    argv = [FWKNOPD, "-c", str(real.conf), "-a", str(real.access), "--fw-list"]
    theirs = pair.server.run(argv).stdout.decode()
    real.stop()

    ours = OurFwknopd(
        pair.server, tmp_path / "ours", interface=pair.server_if, access_conf=ACCESS,
        firewall="iptables",
    ).start()  # fmt: skip
    _knock(pair, tmp_path / "home2")
    assert ours.wait_log("opening udp/53"), ours.log()
    mine = pair.server.run(ours.command("--fw-list")).stdout.decode()
    ours.stop()
    assert "/* _exp_" in theirs
    assert _epochs_out(mine) == _epochs_out(theirs)


def test_the_nftables_listing_has_the_same_shape(pair: NetPair, tmp_path: Path) -> None:
    drop_policy_nft(pair.server)
    ours = OurFwknopd(
        pair.server, tmp_path, interface=pair.server_if, access_conf=ACCESS, firewall="nftables"
    ).start()
    before = int(time.time())
    _knock(pair, tmp_path / "home")
    assert ours.wait_log("opening udp/53"), ours.log()
    mine = pair.server.run(ours.command("--fw-list")).stdout.decode()
    ours.stop()
    lines = mine.splitlines()
    assert lines[0].startswith("Listing rules in fwknopd nftables sets of ")
    assert "Set fwknop_in4" in lines
    header = lines.index("Set fwknop_in4") + 1
    assert lines[header] == ("num  target     prot opt source               destination         ")
    rows = sorted(lines[header + 1 : header + 3], key=lambda row: row.split()[2])
    pattern = (
        r"[12]    ACCEPT     {num:<4} --  198\.18\.0\.2           0\.0\.0\.0/0            "
        r"{name} dpt:{port} /\* _exp_(\d+) \*/"
    )
    for row, (num, name, port) in zip(rows, [(17, "udp", 53), (6, "tcp", 22)], strict=True):
        found = re.fullmatch(pattern.format(num=num, name=name, port=port), row)
        assert found is not None, row
        # nft tells the seconds left, in whole seconds: the epoch may come out a little early
        assert before + 58 <= int(found.group(1)) <= int(time.time()) + 60
