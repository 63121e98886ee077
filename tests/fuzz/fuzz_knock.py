"""atheris fuzz target: the knock-sequence collector under random knocks from many sources.

    python tests/fuzz/fuzz_knock.py [libFuzzer options, e.g. -runs=100000 corpus/]

Each input is a stream of knocks (6 bytes each: source, protocol, port,
time step) for a collector with encrypted and shared stanzas, a tiny source
cap and an OS requirement; with the first byte odd, real encrypted and
shared sequences are woven into the stream so the fuzzer reaches decoding
and every policy check, and the input's tail is also parsed as raw IP
packets (``parse_knock``). Any exception is a crash, and so is state past
its bounds: more sources than the cap, more than 48 knocks for a sequence,
a shared position past its last step, or state left after every deadline.
"""

from __future__ import annotations

import ipaddress
import sys

import atheris

with atheris.instrument_imports():
    from fwknop_server.knock import (
        Collector,
        EncryptedRule,
        OsDatabase,
        OsRequirement,
        SharedRule,
        parse_knock,
    )
    from fwknop_server.knock.wire import ICMP, TCP, UDP, Knock

    from fwknop_core import (
        KnockKey,
        KnockRequest,
        build_knock_sequence_from_parts,
        parse_shared_sequence,
    )

MAX_SOURCES = 16
NET = (ipaddress.ip_network("10.0.0.0/8"),)
KEY = KnockKey.from_passphrase("fuzzkey1")
RULES = [
    EncryptedRule(name="enc", source=NET, key=KEY, open_ports=frozenset({("tcp", 22)}),
                  knock_interval=5.0, knock_limit=3),
    EncryptedRule(name="enc2", source=NET, key=KnockKey(b"other-key"), offset=61100,
                  permit_client_ports=True, knock_interval=5.0,
                  require_os=OsRequirement.parse(None, "linux")),
    SharedRule(name="sh", source=NET, steps=parse_shared_sequence("tcp/5501, udp/5502, icmp"),
               open_ports=frozenset({("tcp", 22)}), min_time_diff=0.01, max_time_diff=2.0,
               knock_interval=5.0),
    SharedRule(name="sh2", source=NET, steps=parse_shared_sequence("tcp/61083, tcp/61083"),
               open_ports=frozenset({("udp", 53)}), knock_interval=5.0, knock_limit=1,
               require_os=OsRequirement.parse("Linux:2.2.x-3.x", None)),
]  # fmt: skip
P0F = (
    "[tcp:request]\nlabel = g:unix:Linux:2.2.x-3.x\nsig = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0\n"
)
DB = OsDatabase.from_texts(p0f=[("fuzz.fp", P0F)])
SEQUENCES = [
    build_knock_sequence_from_parts(KnockRequest("10.0.0.1", 6, 22, user), KEY, bytes([n] * 8))
    for n, user in enumerate([b"root", b"longusername1", b""])
]
PROTOS = (TCP, UDP, ICMP)


def _knock(chunk: bytes, now: float) -> Knock:
    source = ipaddress.IPv4Address(0x0A000000 + chunk[0] % 24)
    proto = PROTOS[chunk[1] % 3]
    port = 60990 + int.from_bytes(chunk[2:4], "big") % 400 if chunk[1] & 4 else 5500 + chunk[2] % 4
    return Knock(source, now, proto, None if proto == ICMP else port, chunk[4], chunk[5] % 4)


def _check(collector: Collector) -> None:
    if collector.sources > MAX_SOURCES:
        raise AssertionError(f"{collector.sources} sources over the cap")
    for src in collector._sources.values():
        for enc in src.enc.values():
            if len(enc.data) > 48:
                raise AssertionError("an encrypted sequence grew past 48 knocks")
        for name, sh in src.shared.items():
            rule = collector._by_name[name]
            if not isinstance(rule, SharedRule) or not 1 <= sh.pos < len(rule.steps):
                raise AssertionError("a shared position out of its steps")


def test_one_input(data: bytes) -> None:
    """Feed one stream of knocks; only bounded state and no exception may come out."""
    if not data:
        return
    collector = Collector(RULES, os_db=DB, max_sources=MAX_SOURCES)
    now = 0.0
    woven = list(SEQUENCES[data[0] % 3]) if data[0] & 1 else []
    for i in range(1, len(data) - 5, 6):
        chunk = data[i : i + 6]
        now += (chunk[5] >> 2) / 16.0
        collector.feed(_knock(chunk, now))
        if woven:
            collector.feed(Knock(ipaddress.IPv4Address("10.0.0.1"), now, TCP, woven.pop(0), i, i))
        if chunk[0] & 0x80:
            collector.expire(now)
        _check(collector)
    collector.next_deadline()
    collector.expire(now + 1e6)
    if collector.sources:
        raise AssertionError("state outlived every deadline")
    parse_knock(data[1:], now)
    collector.feed_packet(data[1:], now)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
