"""Send each line of stdin as one UDP datagram: send_udp.py HOST PORT INTERVAL."""

import socket
import sys
import time

host, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family, socket.SOCK_DGRAM) as sock:
    for line in sys.stdin.buffer.read().splitlines():
        if line:
            sock.sendto(line, (host, port))
            if interval:
                time.sleep(interval)
