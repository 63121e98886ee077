"""The kernel's packet ring (PACKET_MMAP, TPACKET_V2): captured packets without a system call each.

The kernel writes every packet the socket filter accepts into a ring of
frames shared with us and marks the frame as ours; we copy the packet out
and hand the frame back. The event loop still wakes on the socket's file
descriptor (it becomes readable while a frame is ours), so this is the same
event-driven capture with a per-packet ``recv`` less, which is a quarter of
the work a junk packet costs. libpcap, which the C fwknopd uses, captures
through the same kernel ring.

The ring is 16384 frames of 2 KiB (32 MiB, allocated once): at 100,000
packets a second that is 160 ms of packets in hand, which rides out a busy
moment on a shared host without dropping anything.

Version 2 rather than 3: version 3 hands over whole blocks, on a timer when
traffic is light, which would delay a lone SPA packet by milliseconds.
See the kernel's Documentation/networking/packet_mmap.rst.

Holes: under a flood that overruns the ring, the kernel now and then moves
on past a frame it never fills (seen here on 6.18, a few frames a minute of
flood; libpcap met it too, the-tcpdump-group/libpcap#898). A reader that
stops at the first frame not yet its own then waits for that frame while
the kernel fills the ones after it, the socket stays readable, and the
event loop spins with capture stuck until the kernel laps the ring. So a
frame still not ours 50 ms after we first stopped at it, with a frame of
ours after it, is passed (it stays the kernel's, to be filled on its next
lap). 50 ms, because a frame another CPU is still writing is done in
microseconds, even on a busy virtual machine.
"""

from __future__ import annotations

import mmap
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from ..vocab import MUTED

__all__ = ["IPV4_UDP", "FastPath", "RxRing"]

_SOL_PACKET = 263
_PACKET_RX_RING = 5
_PACKET_STATISTICS = 6
_PACKET_VERSION = 10
_TPACKET_V2 = 1
_TP_STATUS_USER = 1
_PACKET_OUTGOING = 4
# struct tpacket2_hdr: status, len, snaplen, mac, net (then times and VLAN fields)
_HEADER = struct.Struct("IIIHH")
# an IPv4 header and the UDP header after it, if it has no options: version and header
# length, total length, fragment, protocol, the addresses and the ports (the common case
# of sniffing, decided in one unpack; frames.py's parser reads it too)
IPV4_UDP = struct.Struct("!BxH2xHxB2x4s4sHH4x")
_UDP = 17
_STATUS = struct.Struct("I")
# sll_pkttype: the sockaddr_ll follows the 32-byte header; pkttype is its 11th byte
_PKTTYPE_OFFSET = 32 + 10
_BLOCK_SIZE = 1 << 16
_HOLE_WAIT = 0.05  # seconds a frame must stay unfilled, with filled ones after it, to be passed
# the low byte of a frame's status -> 1 if the frame is ours (TP_STATUS_USER), else 0
_OURS = bytes(b & _TP_STATUS_USER for b in range(256))
T = TypeVar("T")
Parse = Callable[[mmap.mmap, int, int], T | None]  # (ring, offset, length) -> packet or None


class FastPath(NamedTuple, Generic[T]):
    """What ``RxRing.read`` needs to take IPv4 UDP packets apart itself (``frames.fast_path``).

    ``check(payload, source)`` is the flood screen's verdict: ``MUTED`` (the
    screen counted the packet), the packet is dropped; else ``make(payload,
    source, destination, sport, dport, verdict)`` is kept. ``known`` and
    ``address``: the capture source's address objects for packed addresses.
    """

    check: Callable[[bytes, Any], object]
    known: dict[bytes, Any]
    address: Callable[[bytes], Any]
    make: Callable[[bytes, Any, bytes, int, int, object], T]


class RxRing:
    """A TPACKET_V2 receive ring on a packet socket (set up before it is bound)."""

    def __init__(self, sock: socket.socket, *, frames: int = 16384, frame_size: int = 2048) -> None:
        per_block = _BLOCK_SIZE // frame_size
        blocks = max(1, frames // per_block)
        sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V2)
        request = struct.pack("IIII", _BLOCK_SIZE, blocks, frame_size, blocks * per_block)
        sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, request)
        self.sock = sock
        self.frame_size = frame_size
        self.frames = blocks * per_block
        self.map = mmap.mmap(
            sock.fileno(), _BLOCK_SIZE * blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self.clock: Callable[[], float] = time.monotonic
        # what packets made raise (a bug, in parsing or the screen), for the reader to count:
        # the packet is dropped, the rest of the batch read as usual
        self.failures: list[Exception] = []
        self.index = 0
        self.consumed = 0  # frames the last read took, parsed or not
        self.holes = 0  # frames the kernel skipped, that we passed
        self._stopped_at = -1  # the frame the last read stopped at, and since when
        self._stopped_since = 0.0

    def read(
        self, limit: int, parse: Parse[T], *, skip_outgoing: bool, fast: FastPath[T] | None = None
    ) -> list[T]:
        """``parse`` of up to ``limit`` waiting packets (network layer on), in place.

        Each frame is given back as soon as ``parse`` has copied what it
        keeps. A packet longer than a frame arrives truncated; it is dropped
        here, as it is longer than any SPA packet can be.

        With ``fast``, an IPv4 UDP packet without IP options (what a sniffed
        SPA packet nearly always is) is taken apart right here and never
        reaches ``parse``: a flood's packets whose verdict is muted are only
        counted, by the screen (see ``FastPath``). That is a Python call per packet less, a
        twentieth of what one costs.
        """
        packets: list[T] = []
        ring, size, count, index = self.map, self.frame_size, self.frames, self.index
        first = index
        unpack, give_back, append = _HEADER.unpack_from, _STATUS.pack_into, packets.append
        unpack_ip = IPV4_UDP.unpack_from
        if fast is not None:
            check, known, address, make = fast
        try:  # whatever happens, where we are is kept (frames before it are given back)
            for _ in range(limit):
                start = index * size
                status, length, snaplen, _mac, net = unpack(ring, start)
                if not status & _TP_STATUS_USER:
                    ahead = self._past_hole(index)
                    if ahead is None:
                        break
                    index = ahead  # the kernel skipped this frame: go on where it went on
                    continue
                try:
                    if snaplen == length and not (
                        skip_outgoing and ring[start + _PKTTYPE_OFFSET] == _PACKET_OUTGOING
                    ):
                        ip = start + net
                        if fast is not None and length >= 28:
                            vihl, end, frag, proto, src, dst, sport, dport = unpack_ip(ring, ip)
                            if vihl == 0x45 and proto == _UDP and not frag & 0x1FFF and end >= 28:
                                source = known.get(src) or address(src)
                                payload = ring[ip + 28 : ip + (end if end < length else length)]
                                verdict = check(payload, source)
                                if verdict is not MUTED:  # a muted one: the screen counted it
                                    append(make(payload, source, dst, sport, dport, verdict))
                                continue
                        packet = parse(ring, ip, snaplen)
                        if packet is not None:
                            append(packet)
                except Exception as exc:  # this packet alone: the batch goes on
                    self.failures.append(exc)
                finally:  # the frame goes back even if this one packet made something raise
                    give_back(ring, start, 0)
                    index = index + 1 if index + 1 < count else 0
        finally:
            self.index = index
            self.consumed = (index - first) % count  # frames read (a full lap is never a batch)
        return packets

    def _past_hole(self, index: int) -> int | None:
        """The next frame that is ours if the one at ``index`` is a hole, else None."""
        now = self.clock()
        if index != self._stopped_at:
            self._stopped_at, self._stopped_since = index, now
            return None
        if now - self._stopped_since < _HOLE_WAIT:
            return None
        # one status byte per frame, in ring order from here, through the whole ring
        with memoryview(self.map) as view:
            low = view[:: self.frame_size].tobytes()
        ours = (low[index:] + low[:index]).translate(_OURS)
        found = ours.find(1)
        self._stopped_since = now  # look again no sooner than _HOLE_WAIT from now
        if found <= 0:
            return None  # nothing after it: the ring is just empty
        self.holes += found
        self._stopped_at = -1
        return (index + found) % self.frames

    def drops(self) -> int:
        """Packets the kernel had no free frame for since the last call (the count resets)."""
        raw = self.sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
        return int(struct.unpack("II", raw)[1])

    def close(self) -> None:
        """Unmap the ring (before the socket is closed)."""
        self.map.close()
