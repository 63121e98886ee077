"""Replay the IPv4 packets of a capture file with their original timing, from raw sockets.

replay_knocks.py PCAP [SRC DST]  (run in a namespace)

Each packet goes out as captured, IP header and all (a raw socket with
IP_HDRINCL), at its original offset from the first; with SRC and DST, moved
to those addresses (checksums made right again). A recorded 1.x knock
sequence arrives at the server as the real client sent it: the same ports,
protocols, spacing and, for a TCP knock, the same SYN (options, TTL, window),
retransmissions included. Prints "sent N" at the end; bounded by the file
(at most 120 s of it).
"""

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fwknop_server.capture.frames import network_layer
from fwknop_server.capture.libpcap import read_file

from tests.helpers.packets import rewrite

MAX_SECONDS = 120.0
path = Path(sys.argv[1])
moved = sys.argv[2:4] if len(sys.argv) >= 4 else None
packets = []
for linktype, stamp, frame in read_file(path, "ip"):
    ip = network_layer(linktype, frame)
    if ip is not None:
        packets.append((stamp, rewrite(ip, *moved) if moved else ip))
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
start, first = time.monotonic(), packets[0][0] if packets else 0.0
sent = 0
for stamp, ip in packets:
    offset = stamp - first
    if offset > MAX_SECONDS:
        break
    delay = start + offset - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    sock.sendto(ip, (socket.inet_ntoa(ip[16:20]), 0))
    sent += 1
print(f"sent {sent}", flush=True)
