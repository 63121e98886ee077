"""TCP connects to HOST PORT: tcp_probe.py [--source ADDR] HOST PORT TIMEOUT [open|closed WITHIN].

With three arguments: exit 0 if one connection succeeds within TIMEOUT
seconds, else 1. With ``open`` or ``closed`` and WITHIN: try again (each
try bounded by TIMEOUT) until the port is in that state, exit 0 as soon as
it is, 1 if it is not after WITHIN seconds. One process polls, rather than
one process per try: on a loaded machine starting Python is the slow part.
``--source ADDR``: connect from that address of this host.
"""

import socket
import sys
import time

args = sys.argv[1:]
source = None
if args[:1] == ["--source"]:
    source, args = (args[1], 0), args[2:]


def connects(host: str, port: int, timeout: float) -> bool:
    """One TCP connect."""
    try:
        with socket.create_connection((host, port), timeout=timeout, source_address=source):
            return True
    except OSError:
        return False


host, port, timeout = args[0], int(args[1]), float(args[2])
if len(args) == 3:
    sys.exit(0 if connects(host, port, timeout) else 1)
want_open, within = args[3] == "open", float(args[4])
deadline = time.monotonic() + within
while True:
    started = time.monotonic()
    if connects(host, port, timeout) is want_open:
        sys.exit(0)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
