"""Knock collection speed: junk SYNs and valid sequences through parse_knock and the collector.

    python tests/bench/bench_knock.py [--seconds S] [--sources N]

Prints, per CPU-second on one core: junk SYNs (random sources, random ports
of the 256-port knock range, as IP packets) parsed and fed to a collector
with four sequence stanzas; the same knocks fed as already-parsed records;
and complete encrypted sequences granted (32 knocks each, decrypt included).
Also the collector's sources and Python heap after the junk run, so a flood
shows as flat memory. The daemon's end-to-end flood benchmark (SPA grants
during 100,000 junk SYNs a second) comes with the wiring into fwknopd.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import struct
import time
import tracemalloc

from fwknop_server.knock import Collector, EncryptedRule, SharedRule, parse_knock
from fwknop_server.knock.wire import TCP, Knock

from fwknop_core import KnockKey, KnockRequest, build_knock_sequence, parse_shared_sequence

NET = (ipaddress.ip_network("0.0.0.0/0"),)
KEY = KnockKey.from_passphrase("bench-key-1")


def rules() -> list[EncryptedRule | SharedRule]:
    """Two encrypted stanzas and two shared ones."""
    ports = frozenset({("tcp", 22)})
    return [
        EncryptedRule(name="e1", source=NET, key=KEY, open_ports=ports),
        EncryptedRule(name="e2", source=NET, key=KnockKey(b"other-key"), open_ports=ports,
                      offset=40000),
        SharedRule(name="s1", source=NET, steps=parse_shared_sequence("tcp/5501, tcp/5502"),
                   open_ports=ports),
        SharedRule(name="s2", source=NET, steps=parse_shared_sequence("udp/7001, icmp"),
                   open_ports=ports),
    ]  # fmt: skip


def syn_packet(src: int, dport: int, sport: int) -> bytes:
    """A 60-byte IPv4 SYN with Linux's options."""
    opts = bytes.fromhex("020405b40402080a0f1af978000000000103030a")
    tcp = struct.pack("!HHIIBBHHH", sport, dport, sport * 7, 0, 10 << 4, 2, 64240, 0, 0) + opts
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 1, 0x4000, 64, 6, 0,
                     src.to_bytes(4, "big"), bytes([198, 18, 0, 1]))  # fmt: skip
    return ip + tcp


def run(seconds: float, sources: int) -> None:
    """Measure and print."""
    rng = random.Random(1)
    packets = [
        syn_packet(
            0x0A000000 + rng.randrange(sources), 61000 + rng.randrange(256), 1024 + i % 60000
        )
        for i in range(200_000)
    ]
    tracemalloc.start()
    collector = Collector(rules())
    start = time.process_time()
    done = 0
    stamp = 0.0
    while time.process_time() - start < seconds:
        for raw in packets[:20_000]:
            stamp += 1e-5
            collector.feed_packet(raw, stamp)
        done += 20_000
        collector.expire(stamp)
        packets = packets[20_000:] + packets[:20_000]
    took = time.process_time() - start
    heap, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"junk SYNs (feed_packet):{done / took:12,.0f} /s  ({collector.sources} sources kept, "
          f"heap {heap / 1e6:.1f} MB)")  # fmt: skip
    knocks = [k for raw in packets[:50_000] if (k := parse_knock(raw, 0.0)) is not None]
    collector = Collector(rules())
    start = time.process_time()
    for k in knocks:
        collector.feed(k)
    took = time.process_time() - start
    print(f"junk knocks fed:       {len(knocks) / took:12,.0f} /s")
    sequences = [
        build_knock_sequence(KnockRequest("0.0.0.0", 6, 22, b"root"), KEY) for _ in range(300)
    ]
    collector = Collector(rules())
    start = time.process_time()
    granted = 0
    for n, seq in enumerate(sequences):
        src = ipaddress.IPv4Address(0xC6120000 + n)
        for i, port in enumerate(seq):
            granted += len(collector.feed(Knock(src, n + i * 1e-3, TCP, port, 1000 + i, i)))
    took = time.process_time() - start
    print(f"encrypted sequences:   {granted / took:12,.0f} granted /s (32 knocks each)")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--sources", type=int, default=100_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    run(args.seconds, args.sources)


if __name__ == "__main__":
    main()
