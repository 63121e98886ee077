"""``fwknop connect``: knock, wait until the port answers, then carry stdin/stdout over it.

Made to be an OpenSSH ``ProxyCommand`` (``ssh -o ProxyCommand='fwknop
connect home %h %p' host``): ssh talks to our stdin and stdout as if they
were the TCP connection. The connection is the one the fast verify made
(``send.knock(on_connect=...)``), so there is no second connect and no
helper process (no ``nc``): ``relay`` moves the bytes itself, both ways.

Relay rules, so that ssh sees a faithful byte pipe:

* End of stdin is passed on as a half-close (``shutdown(SHUT_WR)``): the
  server still sends what it has. End of the connection is passed on by
  closing our stdout (the descriptor is pointed at ``/dev/null``), so ssh
  reads end-of-file. The relay ends when both directions have ended.
* The socket is non-blocking; stdin and stdout are left as they are (they
  may be a terminal shared with the shell) and are only read when readable
  and written at most ``PIPE_BUF`` bytes when writable, which never blocks.
  Each direction buffers at most ``BUFFER`` bytes before it stops reading.
* Keep-open: with ``every`` seconds, ``reknock`` runs that often while the
  connection lives, so the server keeps the port open for new connections
  (ssh's ControlMaster, scp in a second window) as long as this one lasts.

Exit status: 0 when both directions ended cleanly; a ``ClientError`` (one
line on stderr, its exit code) when the knock or the verify failed, before
ssh has read a byte; 1 when the connection was reset.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import socket
import time
from collections.abc import Callable

__all__ = ["BUFFER", "relay"]

BUFFER = 256 * 1024
CHUNK = 64 * 1024
PIPE_CHUNK = select.PIPE_BUF


def _end_output(fd: int) -> None:
    """End ``fd`` for its reader (it sees end-of-file), keeping the descriptor number in use."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class _Relay:
    """The state of one relay: what is buffered each way and which sides are still open."""

    def __init__(self, sock: socket.socket, in_fd: int, out_fd: int) -> None:
        self.sock = sock
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.to_net = bytearray()
        self.to_out = bytearray()
        self.reading_in = True  # stdin has not ended
        self.reading_net = True  # the connection has not ended
        self.writing_net = True  # not yet shut down for writing
        self.writing_out = True  # stdout not yet ended
        self.sel = selectors.DefaultSelector()

    @property
    def done(self) -> bool:
        """Both directions have ended and everything read has been passed on."""
        return not (self.reading_in or self.reading_net or self.to_net or self.to_out)

    def pass_on_ends(self) -> None:
        """Forward an end of input once its buffer has drained."""
        if not self.reading_in and not self.to_net and self.writing_net:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self.writing_net = False
        if not self.reading_net and not self.to_out and self.writing_out:
            _end_output(self.out_fd)
            self.writing_out = False

    def _want(self, target: int | socket.socket, events: int) -> None:
        try:
            key = self.sel.get_key(target)
        except KeyError:
            if events:
                self.sel.register(target, events)
            return
        if not events:
            self.sel.unregister(target)
        elif key.events != events:
            self.sel.modify(target, events)

    def wait(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for whatever can move now."""
        read, write = selectors.EVENT_READ, selectors.EVENT_WRITE
        net = (read if self.reading_net and len(self.to_out) < BUFFER else 0) | (
            write if self.to_net else 0
        )
        self._want(self.in_fd, read if self.reading_in and len(self.to_net) < BUFFER else 0)
        self._want(self.out_fd, write if self.to_out and self.writing_out else 0)
        self._want(self.sock, net)
        return self.sel.select(timeout)

    def move(self, key: selectors.SelectorKey, mask: int) -> None:
        """Move bytes for one ready descriptor."""
        if key.fileobj is self.sock:
            if mask & selectors.EVENT_WRITE and self.to_net:
                with contextlib.suppress(BlockingIOError):
                    del self.to_net[: self.sock.send(self.to_net[:CHUNK])]
            if mask & selectors.EVENT_READ:
                with contextlib.suppress(BlockingIOError):
                    data = self.sock.recv(CHUNK)
                    self.to_out += data
                    self.reading_net = bool(data)
        elif key.fileobj == self.in_fd:
            data = os.read(self.in_fd, CHUNK)
            self.to_net += data
            self.reading_in = bool(data)
        elif key.fileobj == self.out_fd:
            try:
                del self.to_out[: os.write(self.out_fd, self.to_out[:PIPE_CHUNK])]
            except BrokenPipeError:  # nobody reads our output any more: the session is over
                self.to_out.clear()
                self.to_net.clear()
                self.reading_in = self.reading_net = self.writing_out = False


def relay(
    sock: socket.socket,
    in_fd: int = 0,
    out_fd: int = 1,
    *,
    every: float | None = None,
    reknock: Callable[[], None] | None = None,
) -> None:
    """Copy ``in_fd`` to ``sock`` and ``sock`` to ``out_fd`` until both directions end.

    With ``every`` and ``reknock``, ``reknock()`` runs every ``every``
    seconds while the connection is open. ``ConnectionError`` escapes when
    the peer resets the connection.
    """
    sock.setblocking(False)
    state = _Relay(sock, in_fd, out_fd)
    next_knock = time.monotonic() + every if every and reknock is not None else None
    try:
        while True:
            state.pass_on_ends()
            if state.done:
                return
            timeout = None
            if next_knock is not None and state.reading_net:
                timeout = max(0.0, next_knock - time.monotonic())
            for key, mask in state.wait(timeout):
                state.move(key, mask)
            if next_knock is not None and time.monotonic() >= next_knock and reknock:
                reknock()
                next_knock = time.monotonic() + (every or 0.0)
    finally:
        state.sel.close()
