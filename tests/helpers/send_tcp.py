"""Send stdin over one TCP connection and close it: send_tcp.py HOST PORT."""

import contextlib
import socket
import sys

with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as sock:
    sock.sendall(sys.stdin.buffer.read())
    sock.shutdown(socket.SHUT_WR)
    with contextlib.suppress(OSError):
        sock.recv(1)  # until the server closes (fwknopd's TCP server: after a second)
