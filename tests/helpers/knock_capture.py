"""Capture inbound IPv4 packets: knock_capture.py IFNAME COUNT SECONDS (run in a namespace).

An AF_PACKET socket on IFNAME sees packets before the firewall does, as a
knock listener would; it prints "ready" once bound, then one line
``<time> <hex of the IP packet>`` per inbound IPv4 packet, and exits after
COUNT packets or SECONDS, whichever comes first (bounded either way).
"""

import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ifname, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
sock.bind((ifname, 0))
sock.settimeout(0.5)
print("ready", flush=True)
deadline = time.monotonic() + seconds
seen = 0
while seen < count and time.monotonic() < deadline:
    try:
        frame, addr = sock.recvfrom(65535)
    except TimeoutError:
        continue
    if addr[2] == PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
        continue
    print(f"{time.time():.6f} {frame[14:].hex()}", flush=True)
    seen += 1
