"""access.conf with fwknop 1.x stanzas: knock sequences become rules, 1.x names are answered."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from fwknop_server.access import AccessPolicy, load_access, load_policy, parse_networks
from fwknop_server.errors import ConfigError
from fwknop_server.knock import EncryptedRule, SharedRule
from fwknop_server.settings import Options, load

from fwknop_core import KnockKey, KnockStep
from tests.helpers.legacy import observations

KEY = "kHojL8HJ6vJ9tTBlXMDBjoC7E5GcRYXBUBKG9BW7m9Y="


def _policy(tmp_path: Path, text: str, warnings: list[str] | None = None) -> AccessPolicy:
    path = tmp_path / "access.conf"
    path.write_text(text)
    return load_policy([path], warnings=warnings)


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "access.conf"
    with pytest.raises(ConfigError) as info:
        _policy(tmp_path, text)
    return [line.replace(f"{path}:", "") for line in str(info.value).splitlines()]


@pytest.mark.parametrize("obs", observations(), ids=[o["id"] for o in observations()])
def test_every_access_conf_the_1x_server_ran_reads_unchanged(
    tmp_path: Path, obs: dict[str, object]
) -> None:
    text = str(obs["access_conf"])
    policy = _policy(tmp_path, text)
    assert policy.stanzas == ()
    (stanza,) = policy.sequences
    rule = stanza.rule
    assert (stanza.number, stanza.line, stanza.source_text) == (1, 1, "198.18.5.0/24")
    assert rule.name == f"{tmp_path / 'access.conf'}:1"
    assert isinstance(rule, SharedRule if "SHARED_SEQUENCE" in text else EncryptedRule)
    assert rule.matches_source(ipaddress.ip_address("198.18.5.1"))
    assert not rule.matches_source(ipaddress.ip_address("198.18.6.1"))
    if "FW_ACCESS_TIMEOUT" not in text:
        assert rule.fw_access_timeout == 30  # 1.x: never closed


def test_an_encrypted_stanza_every_keyword(tmp_path: Path) -> None:
    (stanza,) = _policy(
        tmp_path,
        "# 1.x syntax, and 2.x's beside it\n"
        "SOURCE: 198.18.5.0/24, !198.18.5.128/25;\n"
        "DATA_COLLECT_MODE: ENCRYPT_SEQUENCE;\n"
        "KEY: a key with spaces;\n"
        "PORT_OFFSET 40000\n"
        "OPEN_PORTS: tcp/22, udp/53, ICMP;\n"
        "PERMIT_CLIENT_PORTS;\n"
        "REQUIRE_USERNAME: alice, bob;\n"
        "REQUIRE_SOURCE_ADDRESS: Y;\n"
        "KNOCK_ALLOW_IP: 198.51.100.0/24;\n"
        "REQUIRE_OS: Linux:2.4::Linux 2.4/2.6;\n"
        "REQUIRE_OS_REGEX: linux;\n"
        "KNOCK_INTERVAL: 12.5;\n"
        "KNOCK_LIMIT: 3;\n"
        "MAX_ACCESS_TIMEOUT: 90;\n",
    ).sequences
    rule = stanza.rule
    assert isinstance(rule, EncryptedRule)
    assert rule.key == KnockKey(b"a key with spaces")
    assert rule.offset == 40000 and rule.ports == range(40000, 40256)
    assert rule.open_ports == {("tcp", 22), ("udp", 53), ("icmp", 0)}
    assert rule.permit_client_ports and rule.require_source_address
    assert rule.require_usernames == {b"alice", b"bob"}
    assert rule.allow_ip == (ipaddress.ip_network("198.51.100.0/24"),)
    assert rule.require_os is not None and rule.require_os.exact == "Linux:2.4::Linux 2.4/2.6"
    assert rule.require_os.regex is not None and rule.require_os.regex.pattern == "linux"
    assert (rule.knock_interval, rule.knock_limit, rule.fw_access_timeout) == (12.5, 3, 90)
    assert rule.matches_source(ipaddress.ip_address("198.18.5.127"))
    assert not rule.matches_source(ipaddress.ip_address("198.18.5.128"))  # excluded


def test_a_shared_stanza_in_2x_syntax(tmp_path: Path) -> None:
    (stanza,) = _policy(
        tmp_path,
        "SOURCE ANY\nSHARED_SEQUENCE tcp/5501, UDP/5502, icmp\nOPEN_PORTS tcp/22\n"
        "MIN_TIME_DIFF 0.5\nMAX_TIME_DIFF 3\nREQUIRE_OS_REGEX bsd\n",
    ).sequences
    rule = stanza.rule
    assert isinstance(rule, SharedRule) and stanza.kind == "shared"
    assert rule.steps == (KnockStep(6, 5501), KnockStep(17, 5502), KnockStep(1))
    assert (rule.min_time_diff, rule.max_time_diff) == (0.5, 3.0)
    assert rule.knock_interval == 60 and rule.knock_limit is None


def test_spa_and_sequence_stanzas_in_one_file_keep_their_numbers(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEY}\n"
        "SOURCE: ANY;\nENCRYPT_SEQUENCE;\nKEY: testkey1;\nOPEN_PORTS: tcp/22;\n"
        f"SOURCE ANY\nDATA_COLLECT_MODE PCAP\nKEY_BASE64 {KEY}\n"
        "SOURCE ANY\nSHARED_SEQUENCE tcp/1, tcp/2\nOPEN_PORTS tcp/22\n",
    )
    assert [s.number for s in policy.stanzas] == [1, 3]
    assert [(s.number, s.line, s.kind) for s in policy.sequences] == [
        (2, 3, "encrypted"),
        (4, 10, "shared"),
    ]
    assert load_access([tmp_path / "access.conf"]) == policy.stanzas  # SPA stanzas alone


def test_1x_forms_are_read_only_on_lines_ending_with_a_semicolon(tmp_path: Path) -> None:
    # every 1.x line ends with ';': KEY:testkey1; is 1.x's KEY, a bare flag is yes
    policy = _policy(
        tmp_path,
        "SOURCE:ANY;\nENCRYPT_SEQUENCE;\nKEY:testkey1;\nOPEN_PORTS:tcp/22;\n"
        f"SOURCE ANY;\nKEY_BASE64:{KEY};\nENABLE_CMD_EXEC;\n",
    )
    (sequence,) = policy.sequences
    assert isinstance(sequence.rule, EncryptedRule)
    assert sequence.rule.key == KnockKey.from_passphrase("testkey1")
    (stanza,) = policy.stanzas
    assert stanza.command_exec is not None  # a bare 1.x flag: yes


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("HMAC_KEY_BASE64:abc", "HMAC_KEY_BASE64..."),  # issue 11: no ';', not NAME VALUE
        ("HMAC_KEY_BASE64;", "HMAC_KEY_BASE64..."),  # a name alone is no 1.x flag
        ("HMAC_KEY_BASE64: ;", "HMAC_KEY_BASE64..."),
        ("FORCE_MASQUERADE;", "FORCE_MASQUERADE..."),  # a 2.x flag takes its Y
    ],
)
def test_a_name_without_its_value_still_refuses_the_file(
    tmp_path: Path, line: str, shown: str
) -> None:
    problems = _problems(tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\n{line}\n")
    assert problems == [
        f"3: invalid access file entry: {shown} (a name, then blanks, then its value)"
    ]


def test_only_sequence_stanzas_is_a_valid_policy(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "SOURCE ANY\nSHARED_SEQUENCE tcp/1\nOPEN_PORTS tcp/22\n")
    assert policy.stanzas == () and len(policy.sequences) == 1


def test_sequence_stanza_problems_each_at_its_line_and_never_the_key(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "SOURCE: ANY;\n"  # 1
        "ENCRYPT_SEQUENCE;\n"
        "KEY: s3cret-k3y;\n"
        "PORT_OFFSET: 65281;\n"
        "OPEN_PORTS: tcp/22, sctp/9;\n"  # 5
        "MIN_TIME_DIFF: 1;\n"
        "HMAC_KEY: s3cret-k3y;\n"
        "REQUIRE_SOURCE_ADDRESS: 10.0.0.0/8;\n"
        "FW_ACCESS_TIMEOUT: 0;\n"
        "REQUIRE_OS_REGEX: *bsd;\n"  # 10
        "SOURCE ANY\n"  # 11
        "SHARED_SEQUENCE udp/1, udp/2\n"
        "OPEN_PORTS tcp/22\n"
        "REQUIRE_USERNAME root\n"
        "REQUIRE_OS Linux\n"  # 15
        "SOURCE ANY\nSHARED_SEQUENCE tcp/1\nOPEN_PORTS tcp/1\nKNOCK_INTERVAL 0\n"  # 16-19
        "SOURCE ANY\n"  # 20
        "SHARED_SEQUENCE tcp/1, ftp/2\n"
        "ENCRYPT_SEQUENCE Y\n"
        "SOURCE ANY\n"  # 23
        "SHARED_SEQUENCE tcp/1\n"
        "OPEN_PORTS tcp/22\n"
        "MIN_TIME_DIFF 5\n"
        "MAX_TIME_DIFF 2\n"
        "SOURCE NONE\n"  # 28
        "SHARED_SEQUENCE tcp/1\n"
        "OPEN_PORTS tcp/22\n"
        "SOURCE ANY\n"  # 31
        "ENCRYPT_SEQUENCE Y\n"
        "OPEN_PORTS tcp/22\n"
        "SOURCE ANY\n"  # 34
        "DATA_COLLECT_MODE SOCKET\n"
        "SOURCE ANY\n"  # 36
        "ENCRYPT_SEQUENCE Y\n"
        "KEY __CHANGEME__\n"
        "OPEN_PORTS tcp/22\n"
        "EXTERNAL_CMD_OPEN /bin/true $SRC\n",
    )
    assert problems == [
        "6: MIN_TIME_DIFF does not apply to an encrypted sequence stanza",
        "7: HMAC_KEY does not apply to an encrypted sequence stanza",
        "5: OPEN_PORTS entry 'sctp/9' is not tcp/PORT, udp/PORT or icmp",
        "10: REQUIRE_OS_REGEX '*bsd' does not compile: nothing to repeat at position 0",
        "9: FW_ACCESS_TIMEOUT must be 1..8388608 seconds (fwknop 1.x took a missing or 0 value "
        "as 'never close')",
        "8: REQUIRE_SOURCE_ADDRESS takes Y or N here; fwknop 1.x's network list is not "
        "supported (KNOCK_ALLOW_IP names where an allow IP may point besides the knock source)",
        "4: PORT_OFFSET '65281' is not a number in 1..65280",
        "14: REQUIRE_USERNAME does not apply to a shared sequence stanza",
        "15: REQUIRE_OS needs a tcp step in SHARED_SEQUENCE: only TCP SYNs are fingerprinted",
        "19: KNOCK_INTERVAL 0 must be above 0",
        "22: ENCRYPT_SEQUENCE and SHARED_SEQUENCE say different things: one stanza is one kind",
        "27: MAX_TIME_DIFF 2 is below MIN_TIME_DIFF 5",
        "28: SOURCE NONE: this stanza would match no address",
        "31: an encrypted sequence stanza needs KEY (the 1.x client's key)",
        "35: DATA_COLLECT_MODE 'SOCKET' is not PCAP, FILE_PCAP, ULOG_PCAP (an SPA stanza), "
        "ENCRYPT_SEQUENCE or SHARED_SEQUENCE",
        "40: EXTERNAL_CMD_OPEN (fwknop 1.x): not supported; in an SPA stanza use CMD_CYCLE_OPEN, "
        "CMD_CYCLE_CLOSE and CMD_CYCLE_TIMER (1.x's $SRC is $IP there; $PORT and $PROTO are the "
        "same)",
        "38: KEY is still __CHANGEME__: put a key here (fwknop --key-gen)",
    ]
    assert not any("s3cret" in p for p in problems)


def test_sequence_keywords_in_an_spa_stanza_are_refused(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, f"SOURCE ANY\nKEY_BASE64 {KEY}\nKNOCK_LIMIT 2\nPORT_OFFSET 40000\n"
    )
    assert problems == [
        "3: KNOCK_LIMIT belongs to knock-sequence stanzas (ENCRYPT_SEQUENCE or SHARED_SEQUENCE); "
        "this is an SPA stanza",
        "4: PORT_OFFSET belongs to knock-sequence stanzas (ENCRYPT_SEQUENCE or SHARED_SEQUENCE); "
        "this is an SPA stanza",
    ]


def test_1x_names_warned_about_with_what_replaced_them(tmp_path: Path) -> None:
    warnings: list[str] = []
    path = tmp_path / "access.conf"
    _policy(
        tmp_path,
        f"SOURCE: ANY;\nFILE_PCAP;\nKEY_BASE64: {KEY};\nREQUIRE_SOURCE_ADDRESS: Y;\n"
        "GPG_USE_OPTIONS;\nPERMIT_CLIENT_PORTS;\n"
        "SOURCE: ANY;\nSHARED_SEQUENCE: tcp/1;\nOPEN_PORTS: tcp/22;\nKNOCK_LIMIT: 0;\n",
        warnings,
    )
    assert warnings == [
        f"{path}:5: GPG_USE_OPTIONS (fwknop 1.x): ignored: gpg never reads an options file "
        "here (--no-options)",
        f"{path}:6: PERMIT_CLIENT_PORTS (fwknop 1.x): ignored in an SPA stanza, which grants "
        "what the client asks unless OPEN_PORTS limits it",
        f"{path}:2: FILE_PCAP (fwknop 1.x): an SPA stanza; how packets are captured is "
        "fwknopd.conf's (sniffing PCAP_INTF, the UDP server, or PCAP_FILE)",
        f"{path}:10: KNOCK_LIMIT 0: this stanza grants nothing",
    ]


def test_spa_stanza_1x_extensions(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nENABLE_CMD_EXEC Y\nCMD_REGEX ^(uptime|df -h)$\n"
        "GPG_PATH /usr/local/bin/gpg2\nMAX_ACCESS_TIMEOUT 77\nREQUIRE_OS_REGEX linux\n",
    )
    (stanza,) = policy.stanzas
    assert stanza.cmd_regex is not None and stanza.cmd_regex.search("uptime")
    assert not stanza.cmd_regex.search("uptime; rm -rf /")
    assert stanza.fw_access_timeout == 77
    assert stanza.require_os is not None and stanza.require_os.regex is not None
    problems = _problems(
        tmp_path,
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nCMD_REGEX ^uptime$\n"
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nENABLE_CMD_EXEC Y\nCMD_REGEX (\n",
    )
    assert problems == [
        "3: CMD_REGEX limits command messages: it needs ENABLE_CMD_EXEC Y",
        "7: CMD_REGEX '(' does not compile: missing ), unterminated subpattern at position 0",
    ]


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("ANY, !198.18.7.0/24", ["198.18.6.255", "198.18.8.0", "::1"], ["198.18.7.9"]),
        ("10.0.0.0/8, !10.1.0.0/16, !10.2.3.4", ["10.3.0.1", "10.2.3.5"], ["10.1.9.9", "10.2.3.4"]),
        ("10.1.0.0/16, !10.0.0.0/8", [], ["10.1.0.1"]),  # excluded whole
        ("NONE", [], ["1.2.3.4"]),
    ],
)
def test_1x_network_forms(text: str, inside: list[str], outside: list[str]) -> None:
    nets = parse_networks(text)
    for ip in inside:
        assert any(ipaddress.ip_address(ip) in n for n in nets), ip
    for ip in outside:
        assert not any(ipaddress.ip_address(ip) in n for n in nets), ip


def test_exclusions_alone_are_refused() -> None:
    with pytest.raises(ValueError, match="only '!' exclusions"):
        parse_networks("!10.0.0.0/8")


def test_a_file_of_knock_sequences_others_can_read_draws_the_warning(tmp_path: Path) -> None:
    # the KEY of a sequence stanza is a key too: its file is checked as an SPA stanza's is
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    conf.chmod(0o600)
    sequences = tmp_path / "sequences.conf"
    sequences.write_text("SOURCE: ANY;\nENCRYPT_SEQUENCE;\nKEY: testkey1;\nOPEN_PORTS: tcp/22;\n")
    sequences.chmod(0o644)
    access = tmp_path / "access.conf"
    access.write_text(f"SOURCE ANY\nKEY_BASE64 {KEY}\n%include {sequences}\n")
    access.chmod(0o600)
    warnings: list[str] = []
    load(Options(config_file=conf, access_paths=(access,)), warnings)
    assert [w for w in warnings if w.startswith("[-] file:")] == [
        f"[-] file: {sequences} permissions should only be user read/write (0600, -rw-------)"
    ]
