"""Grants over netlink on a real kernel: the elements nft lists, and the kernel's refusals."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.helpers.netns import NetPair, drop_policy_nft, net_pair

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("namespaces")]

SCRIPT = textwrap.dedent(
    """
    import ipaddress, subprocess
    from fwknop_core import MessageType
    from fwknop_server.firewall import FirewallError
    from fwknop_server.firewall.netlink import NftNetlink
    from fwknop_server.firewall.nftables import Nftables
    from fwknop_server.firewall.runner import Libnftables
    from fwknop_server.vocab import Grant

    NOW = 1_000_000
    def grant(src, *ports, expires):
        return Grant(ipaddress.ip_address(src), None, ports, 0, expires, 1, "u",
                     MessageType.ACCESS)

    fw = Nftables(Libnftables(), netlink=NftNetlink())
    fw.start(NOW)
    fw.grant(grant("198.18.0.2", ("tcp", 22), ("udp", 53), expires=NOW + 30), NOW)
    fw.grant(grant("198.18.0.2", ("tcp", 22), expires=NOW + 100), NOW)  # extended
    fw.grant(grant("2001:db8::2", ("tcp", 443), expires=NOW + 60), NOW)
    for name in ("fwknop_in4", "fwknop_in6"):
        print(subprocess.run(["nft", "list", "set", "inet", "filter", name],
                             capture_output=True, text=True, check=True).stdout, "---")
    subprocess.run(["nft", "flush", "chain", "inet", "filter", "input"], check=True)
    subprocess.run(["nft", "delete", "set", "inet", "filter", "fwknop_in6"], check=True)
    try:
        fw.grant(grant("2001:db8::3", ("tcp", 1), expires=NOW + 30), NOW)
    except FirewallError as exc:
        print("refused:", exc, "---")
    fw.grant(grant("198.18.0.4", ("tcp", 2), expires=NOW + 30), NOW)  # the socket still works
    print(subprocess.run(["nft", "list", "set", "inet", "filter", "fwknop_in4"],
                         capture_output=True, text=True, check=True).stdout)
    """
)


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("nl") as made:
        yield made


def test_grants_over_netlink_are_the_elements_nft_lists(pair: NetPair) -> None:
    drop_policy_nft(pair.server)
    res = pair.server.run([sys.executable, "-c", SCRIPT], check=False)
    out = res.stdout.decode()
    assert res.returncode == 0, res.stderr.decode()
    v4, v6, refused, after = out.split("---")
    assert "198.18.0.2 . tcp . 22 timeout 1m40s" in v4  # the longer timeout replaced the first
    assert "198.18.0.2 . udp . 53 timeout 30s" in v4
    assert "2001:db8::2 . tcp . 443 timeout 1m" in v6
    assert refused.strip() == "refused: nft: No such file or directory"
    assert "198.18.0.4 . tcp . 2 timeout 30s" in after
