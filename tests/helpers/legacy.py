"""The fwknop 1.x knock vectors in tests/data/legacy (the real 1.9.12 client and server)."""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fwknop_server.knock import (
    EncryptedRule,
    OsRequirement,
    SharedRule,
    parse_knock_limit,
    parse_port_offset,
    parse_seconds,
    parse_usernames,
)

from fwknop_core import KnockKey, KnockRequest, legacy_access, parse_shared_sequence

if TYPE_CHECKING:
    from fwknop_server.knock import Knock, Rule

LEGACY = Path(__file__).resolve().parent.parent / "data" / "legacy"
CLIENT_IP = "198.18.5.1"
SERVER_IP = "198.18.5.2"


@cache
def sequences() -> dict[str, Any]:
    """knock-sequences.json."""
    data: dict[str, Any] = json.loads((LEGACY / "knock-sequences.json").read_text())
    return data


def encrypted() -> list[dict[str, Any]]:
    """The 17 encrypted cases."""
    cases: list[dict[str, Any]] = sequences()["encrypted"]
    return cases


def shared() -> list[dict[str, Any]]:
    """The 2 shared cases."""
    cases: list[dict[str, Any]] = sequences()["shared"]
    return cases


def case(case_id: str) -> dict[str, Any]:
    """One case by id."""
    for c in encrypted() + shared():
        if c["id"] == case_id:
            return c
    raise KeyError(case_id)


@cache
def observations() -> list[dict[str, Any]]:
    """The 28 runs of the real fwknopd 1.9.12 (server-1x-observations.json)."""
    data: list[dict[str, Any]] = json.loads((LEGACY / "server-1x-observations.json").read_text())[
        "scenarios"
    ]
    return data


@cache
def os_fingerprint() -> dict[str, Any]:
    """os-fingerprint.json."""
    data: dict[str, Any] = json.loads((LEGACY / "os-fingerprint.json").read_text())
    return data


def argv_value(c: dict[str, Any], flag: str) -> str | None:
    """The value after ``flag`` in a case's client argv."""
    argv: list[str] = c["client_argv"]
    return argv[argv.index(flag) + 1] if flag in argv else None


def request_of(c: dict[str, Any]) -> KnockRequest:
    """The request the 1.x client built for an encrypted case, from its argv and user."""
    allow = argv_value(c, "-a") or "0.0.0.0"
    access = argv_value(c, "-A")
    assert access is not None
    proto, port = legacy_access(access)
    return KnockRequest(allow, proto, port, c["client_user"].encode())


def cipher_ports(c: dict[str, Any]) -> list[int]:
    """The ports of the ciphertext (the wire knocks without the retransmitted SYN)."""
    return [c["port_offset"] + b for b in bytes.fromhex(c["ciphertext_hex"])]


def wire_ports(c: dict[str, Any]) -> list[int]:
    """The destination ports of the knocks as captured."""
    return [port for _proto, port in c["knocks"]]


def pcap_knocks(path: Path | str, expression: str | None = None) -> list[Knock]:
    """The knocks of a capture file, read with libpcap and parsed by ``parse_knock``."""
    from fwknop_server.capture.frames import network_layer
    from fwknop_server.capture.libpcap import read_file
    from fwknop_server.knock import parse_knock

    out: list[Knock] = []
    for linktype, stamp, frame in read_file(Path(LEGACY / path), expression):
        ip = network_layer(linktype, frame)
        knock = None if ip is None else parse_knock(ip, stamp)
        if knock is not None:
            out.append(knock)
    return out


NET = (ipaddress.ip_network("198.18.5.0/24"),)


def _ports(text: str) -> frozenset[tuple[str, int]]:
    out = set()
    for item in text.split(","):
        proto, _, port = item.strip().lower().partition("/")
        out.add((proto, int(port or 0)))
    return frozenset(out)


def rule_from_1x(access_conf: str, name: str = "stanza1") -> Rule:
    """A 1.x stanza (``KEY: value;`` lines) as a rule: the test's stand-in for the reader."""
    kv: dict[str, str] = {}
    for line in access_conf.splitlines():
        if not line.strip():
            continue
        key, _, value = line.rstrip(";").partition(":")
        kv[key.strip()] = value.strip()
    common: dict[str, Any] = {"name": name, "source": NET}
    if "KNOCK_INTERVAL" in kv:
        common["knock_interval"] = parse_seconds("KNOCK_INTERVAL", kv["KNOCK_INTERVAL"])
    if "KNOCK_LIMIT" in kv:
        common["knock_limit"] = parse_knock_limit(kv["KNOCK_LIMIT"])
    if "FW_ACCESS_TIMEOUT" in kv:
        common["fw_access_timeout"] = int(kv["FW_ACCESS_TIMEOUT"])
    common["require_os"] = OsRequirement.parse(kv.get("REQUIRE_OS"), kv.get("REQUIRE_OS_REGEX"))
    if "SHARED_SEQUENCE" in kv:
        return SharedRule(
            steps=parse_shared_sequence(kv["SHARED_SEQUENCE"]),
            open_ports=_ports(kv["OPEN_PORTS"]),
            min_time_diff=parse_seconds("MIN", kv["MIN_TIME_DIFF"])
            if "MIN_TIME_DIFF" in kv
            else None,
            max_time_diff=parse_seconds("MAX", kv["MAX_TIME_DIFF"])
            if "MAX_TIME_DIFF" in kv
            else None,
            **common,
        )
    return EncryptedRule(
        key=KnockKey.from_passphrase(kv["KEY"]),
        open_ports=_ports(kv["OPEN_PORTS"]),
        offset=parse_port_offset(kv.get("PORT_OFFSET", "61000")),
        require_usernames=parse_usernames(kv["REQUIRE_USERNAME"])
        if "REQUIRE_USERNAME" in kv
        else None,
        require_source_address="REQUIRE_SOURCE_ADDRESS" in kv,
        **common,
    )
