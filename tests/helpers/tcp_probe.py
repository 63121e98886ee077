"""Exit 0 if a TCP connection to HOST PORT succeeds within TIMEOUT seconds, else 1."""

import socket
import sys

host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    with socket.create_connection((host, port), timeout=timeout):
        pass
except OSError:
    sys.exit(1)
