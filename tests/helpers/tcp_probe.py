"""TCP connects to HOST PORT: tcp_probe.py HOST PORT TIMEOUT [open|closed WITHIN].

With three arguments: exit 0 if one connection succeeds within TIMEOUT
seconds, else 1. With ``open`` or ``closed`` and WITHIN: try again (each
try bounded by TIMEOUT) until the port is in that state, exit 0 as soon as
it is, 1 if it is not after WITHIN seconds. One process polls, rather than
one process per try: on a loaded machine starting Python is the slow part.
"""

import socket
import sys
import time


def connects(host: str, port: int, timeout: float) -> bool:
    """One TCP connect."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if len(sys.argv) == 4:
    sys.exit(0 if connects(host, port, timeout) else 1)
want_open, within = sys.argv[4] == "open", float(sys.argv[5])
deadline = time.monotonic() + within
while True:
    started = time.monotonic()
    if connects(host, port, timeout) is want_open:
        sys.exit(0)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
