"""Local UDP sockets that knocks can land on (loopback, bound to free ports)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager


@contextmanager
def udp_sinks(count: int, timeout: float = 10.0) -> Iterator[list[socket.socket]]:
    """``count`` UDP sockets on 127.0.0.1, each with a receive timeout; closed after."""
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(timeout)
            socks.append(sock)
        yield socks
