"""The fwknop 1.x knock vectors in tests/data/legacy (the real 1.9.12 client and server)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fwknop_server.access import load_policy

from fwknop_core import KnockRequest, legacy_access

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


def rule_from_1x(access_conf: str, name: str = "stanza1") -> Rule:
    """A 1.x stanza (``KEY: value;`` lines) as our stanza reader reads it.

    A whole access.conf is read unchanged; lines without a SOURCE get
    ``SOURCE: 198.18.5.0/24;`` and, without SHARED_SEQUENCE, ``ENCRYPT_SEQUENCE;``.
    """
    text = access_conf
    if not re.search(r"^SOURCE", text, re.M):
        kind = re.search(r"^(SHARED|ENCRYPT)_SEQUENCE", text, re.M)
        text = f"SOURCE: 198.18.5.0/24;\n{'' if kind else 'ENCRYPT_SEQUENCE;'}\n{text}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.conf"
        path.write_text(text)
        (stanza,) = load_policy([path]).sequences
    return dataclasses.replace(stanza.rule, name=name)
