"""IPv6 end to end: our client asks for an IPv6 address, our fwknopd opens it (nftables inet).

In namespaces with addresses from the documentation range: our ``fwknop
send`` in the client namespace, a profile with ``server_type =
"fwknop-tui"`` and the client's IPv6 address as the allow IP, sent over
IPv6 to our fwknopd sniffing behind a default-drop policy (nftables, whose
``inet`` sets hold IPv6 grants, and iptables with ``ENABLE_IP6TABLES Y``). A TCP
connect over IPv6 fails before the knock and succeeds after it; the grant
is for that IPv6 address alone (IPv4 stays closed). The same profile aimed
at a C fwknopd is refused before anything is sent, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.netns import (
    CLIENT_IP6,
    SERVER_IP6,
    drop_policy_iptables,
    drop_policy_nft,
    net_pair,
)
from tests.helpers.ourclient import OurClient
from tests.helpers.ourd import OurFwknopd, nft_set

pytestmark = [
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.usefixtures("namespaces"),
]


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_our_client_and_server_over_ipv6_with_an_ipv6_allow_ip(
    backend: str, tmp_path: Path
) -> None:
    keys = generate_keys()
    client = OurClient(tmp_path / "client")
    keyfile = client.key_file("v6", keys.as_text())
    client.profiles.write_text(
        "[profiles.v6]\n"
        f'host = "{SERVER_IP6}"\n'
        'server_type = "fwknop-tui"\n'
        f'allow_ip = "{CLIENT_IP6}"\n'
        f'key_file = "{keyfile}"\n'
        "\n[profiles.c-server]\n"
        f'host = "{SERVER_IP6}"\n'
        f'allow_ip = "{CLIENT_IP6}"\n'
        f'key_file = "{keyfile}"\n'
    )
    with net_pair("s6") as pair:
        if backend == "nftables":
            drop_policy_nft(pair.server)
        else:
            drop_policy_iptables(pair.server)  # ip6tables too
        pair.listen_tcp(22)
        server = OurFwknopd(
            pair.server,
            tmp_path / "srv",
            interface=pair.server_if,
            access_conf=f"SOURCE ANY\n{keys.as_text()}REQUIRE_SOURCE_ADDRESS Y\n",
            conf_extra="ENABLE_IP6TABLES Y\n" if backend == "iptables" else "",
            firewall=backend,
        ).start()
        assert not pair.tcp_open(22, host=SERVER_IP6)
        refused = client.run(["send", "c-server"], ns=pair.client)
        assert refused.returncode == 4, refused.stderr
        assert b"C fwknopd 2.6 refuses an IPv6 allow IP" in refused.stderr
        sent = client.run(["send", "v6"], ns=pair.client)
        assert sent.returncode == 0, sent.stderr
        assert pair.wait_open(22, host=SERVER_IP6)
        assert server.wait_log(f"opening tcp/22 for {CLIENT_IP6}")
        if backend == "nftables":
            assert f"{CLIENT_IP6} . tcp . 22" in nft_set(pair.server, "fwknop_in6")
        else:
            rules = pair.server.run(["ip6tables", "-S", "FWKNOP_INPUT"]).stdout.decode()
            assert f"-s {CLIENT_IP6}/128" in rules and "--dport 22" in rules
        assert not pair.tcp_open(22), "IPv4 opened too"
        server.stop()
