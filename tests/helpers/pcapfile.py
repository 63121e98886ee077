"""Capture files for ``--pcap-file``: UDP datagrams to the SPA port, as libpcap writes them."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

__all__ = ["write_udp_pcap"]

_DLT_RAW = 101  # raw IP: no link-layer header


def write_udp_pcap(path: Path, payloads: list[bytes], src: str, dst: str) -> None:
    """A capture file of UDP packets from ``src`` port 40000 to ``dst`` port 62201."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _DLT_RAW))
        for i, payload in enumerate(payloads):
            udp = struct.pack("!HHHH", 40000, 62201, 8 + len(payload), 0) + payload
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed,
            ) + udp  # fmt: skip
            f.write(struct.pack("<IIII", 1000 + i, 0, len(ip), len(ip)) + ip)
