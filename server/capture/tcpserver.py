"""fwknopd's TCP server (``ENABLE_TCP_SERVER``): lets ``-P tcp`` clients connect.

As fwknopd's: accept, give the client a second to send, close. What it
sends is read by sniffing (``PCAP_FILTER`` must match it), not here, so
this only drains and discards. Connections past ``MAX_HELD`` at a time are
closed at once.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["MAX_HELD", "tcp_server"]

log = logging.getLogger("fwknop_server")

MAX_HELD = 64  # connections held at a time
_HOLD = 1.0  # seconds a client is given to send


async def tcp_server(port: int) -> asyncio.Server:
    """Listen on ``port`` (every address) until the server is closed."""
    active = 0

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active
        active += 1
        try:
            if active <= MAX_HELD:
                async with asyncio.timeout(_HOLD):
                    while await reader.read(4096):
                        pass
        except (TimeoutError, OSError):
            pass
        finally:
            active -= 1
            writer.close()

    server = await asyncio.start_server(hold, port=port, reuse_address=True)
    log.info("Kicking off TCP server to listen on port %d.", port)
    return server
