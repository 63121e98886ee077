"""fwknopd.conf as fwknopd reads it (server-config.md §1-2), and its problems as file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from fwknop_server.config import DEFAULTS, Overrides, describe, load_server_config
from fwknop_server.confsyntax import Invalid, read_settings
from fwknop_server.errors import ConfigError


def _conf(tmp_path: Path, text: str, name: str = "fwknopd.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_line_syntax_quirks(tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "; another\n"
        "   \n"
        "PCAP_INTF eth1;\n"
        "PCAP_FILTER: udp port 40000 ; trailing text after the semicolon\n"
        "\tSYSLOG_IDENTITY\tfwknopd-#2\n"
        "VERBOSE 1   \n"
    )
    settings = {s.name: (s.value, s.line) for s in read_settings(Path("x"), text, [])}
    assert settings == {
        "PCAP_INTF": ("eth1", 4),
        "PCAP_FILTER": ("udp port 40000", 5),  # the name's ':' is dropped, value ends at ';'
        "SYSLOG_IDENTITY": ("fwknopd-#2", 6),  # a later '#' is part of the value
        "VERBOSE": ("1", 7),  # trailing blanks stripped
    }


def test_fwknop_1x_line_forms(tmp_path: Path) -> None:
    # every 1.x line ends with ';': only such a line is read in the 1.x forms
    text = (
        "SOURCE: 198.18.5.0/24;\n"
        "ENCRYPT_SEQUENCE;\n"  # a bare flag
        "KEY:testkey1;\n"  # no blank after the colon
        "KEY ::abc\n"  # 2.x: a value may begin with colons
        "KEY: :abc;\n"  # 1.x: so may it here, after the blank
        "HMAC_KEY_BASE64:abc\n"  # no ';': not 1.x, and not NAME VALUE (issue 11)
        "FOO_BAR\n"  # a name alone, without the ';' of a 1.x flag
        ":;\n"  # no name at all
        "HMAC_KEY;\n"  # a name alone that is not one of the loader's 1.x flags
    )
    invalid: list[Invalid] = []
    lines = read_settings(Path("x"), text, invalid, bare={"ENCRYPT_SEQUENCE"})
    settings = [(s.name, s.value, s.line) for s in lines]
    assert settings == [
        ("SOURCE", "198.18.5.0/24", 1),
        ("ENCRYPT_SEQUENCE", "", 2),
        ("KEY", "testkey1", 3),
        ("KEY", "::abc", 4),
        ("KEY", ":abc", 5),
    ]
    assert [(i.name, i.line) for i in invalid] == [
        ("HMAC_KEY_BASE64...", 6),
        ("FOO_BAR", 7),
        ("...", 8),
        ("HMAC_KEY...", 9),
    ]


def test_defaults_and_expansion(tmp_path: Path) -> None:
    config = load_server_config(_conf(tmp_path, "FWKNOP_RUN_DIR /srv/run\n"))
    assert config.values["PCAP_INTF"] == "eth0"
    assert config.values["PCAP_FILTER"] == "udp port 62201"
    assert config.file("DIGEST_FILE") == Path("/srv/run/digest.cache")
    assert config.file("FWKNOP_PID_FILE") == Path("/srv/run/fwknopd.pid")
    assert config.file("ACCESS_FILE") == Path("/etc/fwknop/access.conf")
    assert config.file("REPLAY_DB_FILE") == Path("/srv/run/replay.sqlite")
    assert config.flag("FLUSH_NFT_AT_EXIT") is True  # follows FLUSH_IPT_AT_EXIT
    assert config.max_packet_age == 120
    assert config.where("FWKNOP_RUN_DIR").endswith("fwknopd.conf:1")
    assert config.where("PCAP_INTF") == "default"


def test_expansion_follows_the_referenced_value(tmp_path: Path) -> None:
    config = load_server_config(
        _conf(
            tmp_path,
            "FLUSH_IPT_AT_EXIT N\nFWKNOP_CONF_DIR /opt/fw\nDIGEST_FILE $FWKNOP_RUN_DIR/d\n",
        )
    )
    assert config.flag("FLUSH_NFT_AT_EXIT") is False
    assert config.file("ACCESS_FILE") == Path("/opt/fw/access.conf")
    assert config.file("DIGEST_FILE") == Path("/var/run/fwknop/d")


def test_booleans_are_yes_only_when_they_start_with_y(tmp_path: Path) -> None:
    config = load_server_config(
        _conf(tmp_path, "ENABLE_UDP_SERVER yes\nENABLE_PCAP_PROMISC Yup\nEXIT_AT_INTF_DOWN no\n")
    )
    assert config.flag("ENABLE_UDP_SERVER")
    assert config.flag("ENABLE_PCAP_PROMISC")
    assert not config.flag("EXIT_AT_INTF_DOWN")


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _conf(
        tmp_path,
        "MAX_SPA_PACKET_AGE 0\n"
        "PCAP_INTF eth0\n"
        "UDPSERV_PORT 70000\n"
        "DIGEST_FILE $NO_SUCH_THING/x\n"
        "IPT_INPUT_ACCESS ACCEPT, filter, INPUT\n"
        "SYSLOG_FACILITY LOG_MAIL\n"
        "FIREWALL_TYPE ipf\n",
    )
    with pytest.raises(ConfigError) as info:
        load_server_config(path)
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}:4: invalid embedded variable $NO_SUCH_THING in DIGEST_FILE",
        f"{path}:1: MAX_SPA_PACKET_AGE must be a number from 1 to 100000, not '0'",
        f"{path}:3: UDPSERV_PORT must be a number from 1 to 65535, not '70000'",
        f"{path}:5: IPT_INPUT_ACCESS must be 'target, table, from_chain, position, to_chain, "
        "position'",
        f"{path}:6: SYSLOG_FACILITY must be one of LOG_DAEMON, LOG_LOCAL0, LOG_LOCAL1, "
        "LOG_LOCAL2, LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7",
        f"{path}:7: FIREWALL_TYPE 'ipf' is not a firewall type; it must be one of nftables, "
        "iptables, firewalld, pf, ipfw, log",
    ]


def test_circular_reference_is_refused(tmp_path: Path) -> None:
    path = _conf(tmp_path, "FWKNOP_RUN_DIR $DIGEST_FILE\nDIGEST_FILE $FWKNOP_RUN_DIR/x\n")
    with pytest.raises(ConfigError, match="circular reference"):
        load_server_config(path)


def test_unknown_and_legacy_names_are_warnings(tmp_path: Path) -> None:
    path = _conf(tmp_path, "IPT_EXEC_TRIES 1\nNOT_A_SETTING x\nPCAP_INTF eth2\n")
    warnings: list[str] = []
    config = load_server_config(path, warnings=warnings)
    assert config.values["PCAP_INTF"] == "eth2"
    assert warnings == [
        f"{path}:1: ignoring IPT_EXEC_TRIES (fwknopd 2.6 ignores it too)",
        f"{path}:2: ignoring NOT_A_SETTING (unknown)",
    ]


def test_override_files_then_command_line_win(tmp_path: Path) -> None:
    main = _conf(tmp_path, "PCAP_INTF eth0\nPCAP_FILTER udp port 1\nMAX_SPA_PACKET_AGE 60\n")
    extra = _conf(tmp_path, "PCAP_FILTER udp port 2\nMAX_SPA_PACKET_AGE 90\n", "extra.conf")
    config = load_server_config(
        main, Overrides(values={"PCAP_INTF": "veth9"}, override_files=(extra,))
    )
    assert config.values["PCAP_INTF"] == "veth9"
    assert config.values["PCAP_FILTER"] == "udp port 2"
    assert config.number("MAX_SPA_PACKET_AGE") == 90


def test_chain_spec_parses(tmp_path: Path) -> None:
    config = load_server_config(
        _conf(tmp_path, "IPT_INPUT_ACCESS ACCEPT, filter, INPUT, 2, MY_SPA, 1\n")
    )
    spec = config.chain("IPT_INPUT_ACCESS")
    assert (spec.target, spec.table, spec.from_chain, spec.jump_position, spec.to_chain) == (
        "ACCEPT",
        "filter",
        "INPUT",
        2,
        "MY_SPA",
    )


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.conf: cannot read"):
        load_server_config(tmp_path / "nope.conf")


def test_aging_off_means_no_max_age(tmp_path: Path) -> None:
    config = load_server_config(_conf(tmp_path, "ENABLE_SPA_PACKET_AGING N\n"))
    assert config.max_packet_age is None


def test_describe_lists_every_setting_with_its_origin(tmp_path: Path) -> None:
    path = _conf(tmp_path, "PCAP_INTF eth3\n")
    lines = describe(load_server_config(path))
    assert len(lines) == len(DEFAULTS)
    assert f"PCAP_INTF                   eth3  ({path}:1)" in lines
    assert "PCAP_FILE                   <not set>  (default)" in lines


@pytest.mark.interop
def test_the_debian_sample_file_loads_unchanged() -> None:
    sample = Path("/etc/fwknop/fwknopd.conf")
    if not sample.exists():
        pytest.skip("fwknop-server is not installed")
    warnings: list[str] = []
    config = load_server_config(sample, warnings=warnings)
    assert config.values["PCAP_FILTER"] == "udp port 62201"
    assert warnings == []  # every line of it is commented out


def test_fwknop_1x_names(tmp_path: Path) -> None:
    """A 1.x fwknop.conf: its dropped names warned about, one refused, its chain spec read."""
    path = _conf(
        tmp_path,
        "AUTH_MODE                   KNOCK;\n"
        "ENABLE_SYSLOG_FILE          Y;\n"
        "IPT_SYSLOG_FILE             /var/log/messages;\n"
        "REQUIRE_SOURCE_ADDRESS      N;\n"
        "IPT_INPUT_ACCESS            ACCEPT, src, filter, INPUT, 1, FWKNOP_INPUT, 1;\n"
        "BLACKLIST                   NONE;\n"
        "MAX_HOPS                    30;\n",
    )
    warnings: list[str] = []
    config = load_server_config(path, warnings=warnings)
    assert warnings == [
        f"{path}:1: AUTH_MODE (fwknop 1.x): ignored: SPA and knock sequences are served "
        "together, as the access stanzas ask",
        f"{path}:2: ENABLE_SYSLOG_FILE (fwknop 1.x): ignored: knocks are captured from the wire "
        "(an AF_PACKET socket with a kernel filter built from the access stanzas), so no "
        "iptables LOG rules, syslog file or knopmd are needed",
        f"{path}:3: IPT_SYSLOG_FILE (fwknop 1.x): ignored: knocks are captured from the wire "
        "(an AF_PACKET socket with a kernel filter built from the access stanzas), so no "
        "iptables LOG rules, syslog file or knopmd are needed",
        f"{path}:4: REQUIRE_SOURCE_ADDRESS (fwknop 1.x): ignored",
    ]
    spec = config.chain("IPT_INPUT_ACCESS")
    assert (spec.target, spec.table, spec.from_chain, spec.to_chain) == (
        "ACCEPT", "filter", "INPUT", "FWKNOP_INPUT"
    )  # fmt: skip
    assert config.number("MAX_HOPS") == 30 and config.text("BLACKLIST") == "NONE"
    refused = _conf(tmp_path, "REQUIRE_SOURCE_ADDRESS Y;\n", "strict.conf")
    with pytest.raises(ConfigError, match=r"strict.conf:1: REQUIRE_SOURCE_ADDRESS \(fwknop 1.x\): "
                       "is set per stanza now"):  # fmt: skip
        load_server_config(refused)


def test_override_files_the_last_wins_and_says_so(tmp_path: Path) -> None:
    main = _conf(tmp_path, "PCAP_INTF eth0\n")
    first = _conf(tmp_path, "PCAP_INTF eth1\n", "a.conf")
    second = _conf(tmp_path, "PCAP_INTF eth2\nMAX_HOPS 5\n", "b.conf")
    warnings: list[str] = []
    config = load_server_config(main, Overrides(override_files=(first, second)), warnings=warnings)
    assert config.values["PCAP_INTF"] == "eth2"
    assert warnings == [
        f"{second}:1: PCAP_INTF here replaces the value from {first}:1 (the last -O file wins, "
        "as in fwknopd 2.x; fwknop 1.x kept the first)"
    ]
