"""Send each line of stdin as one UDP datagram: send_udp.py HOST PORT INTERVAL [SOURCE]."""

import socket
import sys
import time

host, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family, socket.SOCK_DGRAM) as sock:
    if len(sys.argv) > 4:  # from this address of ours (a second one on the interface)
        sock.bind((sys.argv[4], 0))
    for line in sys.stdin.buffer.read().splitlines():
        if line:
            sock.sendto(line, (host, port))
            if interval:
                time.sleep(interval)
