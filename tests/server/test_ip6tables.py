"""The iptables backend opens for IPv6 sources through ip6tables, when ENABLE_IP6TABLES says so."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from fwknop_server.daemon import Options, load
from fwknop_server.firewall import make_firewall
from fwknop_server.firewall.base import Opening

from tests.helpers.recorder import Recorder

NOW = 1_795_268_000
V6 = ipaddress.ip_address("2001:db8::2")
V4 = ipaddress.ip_address("198.18.0.2")


def _config(tmp_path: Path, extra: str = "") -> object:
    (tmp_path / "fwknopd.conf").write_text(f"FIREWALL_TYPE iptables\n{extra}")
    (tmp_path / "access.conf").write_text("SOURCE ANY\nKEY_BASE64 a2V5a2V5a2V5a2V5\n")
    options = Options(tmp_path / "fwknopd.conf", access_paths=(tmp_path / "access.conf",))
    return load(options).config


def test_without_the_setting_ip6tables_is_never_run(tmp_path: Path) -> None:
    run = Recorder()
    firewall = make_firewall(_config(tmp_path), run=run)  # type: ignore[arg-type]
    firewall.start(NOW)
    assert not firewall.supports_ipv6
    assert not [a for a in run.calls if "ip6tables" in a[0]]


def test_ipv6_grants_go_to_ip6tables_with_the_same_chain(tmp_path: Path) -> None:
    run = Recorder(fail=("-C",))  # the chains exist; the jumps do not yet
    firewall = make_firewall(_config(tmp_path, "ENABLE_IP6TABLES Y\n"), run=run)  # type: ignore[arg-type]
    assert firewall.supports_ipv6
    firewall.start(NOW)
    jumps = [a for a in run.calls if "-I" in a and "INPUT" in a]
    assert [a[0] for a in jumps] == ["/usr/sbin/iptables", "/usr/sbin/ip6tables"]
    run.calls.clear()
    firewall._apply([(Opening(V6, "tcp", 22, NOW + 30), None)], NOW)
    firewall._apply([(Opening(V4, "tcp", 22, NOW + 30), None)], NOW)
    assert run.calls == [
        ["/usr/sbin/ip6tables", "-w", "-t", "filter", "-A", "FWKNOP_INPUT", "-p", "tcp",
         "-s", "2001:db8::2", "-d", "::/0", "--dport", "22",
         "-m", "comment", "--comment", f"_exp_{NOW + 30}", "-j", "ACCEPT"],
        ["/usr/sbin/iptables", "-w", "-t", "filter", "-A", "FWKNOP_INPUT", "-p", "tcp",
         "-s", "198.18.0.2", "-d", "0.0.0.0/0", "--dport", "22",
         "-m", "comment", "--comment", f"_exp_{NOW + 30}", "-j", "ACCEPT"],
    ]  # fmt: skip
    run.calls.clear()
    firewall.flush()
    assert {a[0] for a in run.calls if "-X" in a} == {"/usr/sbin/iptables", "/usr/sbin/ip6tables"}


def test_an_ip6tables_that_does_not_answer_leaves_ipv6_off(tmp_path: Path) -> None:
    class NoV6(Recorder):
        def __call__(
            self, argv: Sequence[str], *, stdin: str | None = None
        ) -> tuple[int, str, str]:
            self.calls.append(list(argv))
            return (1, "", "can't initialize ip6tables") if "ip6tables" in argv[0] else (0, "", "")

    firewall = make_firewall(_config(tmp_path, "ENABLE_IP6TABLES Y\n"), run=NoV6())  # type: ignore[arg-type]
    assert not firewall.supports_ipv6
