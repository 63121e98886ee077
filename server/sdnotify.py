"""systemd's readiness protocol (sd_notify(3)): one datagram to ``$NOTIFY_SOCKET``.

A no-op outside systemd. Used for ``READY=1`` once capture runs,
``RELOADING=1`` + ``MONOTONIC_USEC`` around a SIGHUP reload, ``STOPPING=1``
and ``STATUS=`` lines.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["notify", "reloading"]


def notify(state: str) -> bool:
    """Send ``state`` (``KEY=VALUE`` lines) to systemd; False when not run by systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def reloading() -> bool:
    """Tell systemd a reload began (``Type=notify-reload`` wants the monotonic time)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
