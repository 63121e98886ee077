"""Where packets come from: a sniffing packet socket, a UDP socket, a capture file.

Sniffing (fwknopd's default) uses an ``AF_PACKET`` socket of type
``SOCK_DGRAM`` (frames arrive without their link header) with ``PCAP_FILTER``
compiled by libpcap and attached in the kernel, so only matching packets ever
reach us, and the SPA port stays closed: nothing listens. We chose this over
a libpcap capture handle because a packet socket is an ordinary file
descriptor: the event loop wakes exactly when a packet arrives, with no
dispatch-and-sleep loop (fwknopd's PCAP_LOOP_SLEEP is why it grants late and
drops packets under load) and no extra thread.

The UDP server (``ENABLE_UDP_SERVER``) binds the SPA port on all addresses,
IPv4 and IPv6, with a large receive buffer so a flood cannot push a valid
packet out. Both drain their socket in batches when it becomes readable.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

from ..vocab import MUTED, Packet
from . import libpcap
from .frames import Addresses, Check, Parse, fast_path, ip_parser, network_layer, parse_ip
from .ring import FastPath, RxRing

__all__ = ["PacketSocket", "SniffSource", "UdpSource", "read_pcap_file"]

log = logging.getLogger("fwknop_server.capture")

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_MR_PROMISC = 1
_PACKET_IGNORE_OUTGOING = 23
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_BATCH = 1024
_MAX_READ = 65535
_ADDRESS_CACHE = 4096
_new_tuple = tuple.__new__


def _unscreened(_data: bytes, _src: object) -> None:
    """No screen: every packet goes to the pipeline, which screens it itself."""
    return


def _attach_filter(sock: socket.socket, program: bytes) -> None:
    """Attach a classic BPF program; the kernel copies it, so the buffer may go afterwards."""
    array = ctypes.create_string_buffer(program, len(program))  # alive until setsockopt returns
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(array))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _big_buffer(sock: socket.socket, size: int) -> None:
    # SO_RCVBUFFORCE (root) passes net.core.rmem_max; fall back to what is allowed
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def open_packet_socket(
    interface: str,
    bpf_filter: str,
    *,
    what: str,
    any_direction: bool = False,
    promiscuous: bool = False,
    rcvbuf: int = 16 << 20,
    frame_size: int = 2048,
    frames: int = 16384,
) -> tuple[socket.socket, RxRing | None, bool]:
    """A bound, non-blocking ``AF_PACKET`` socket with ``bpf_filter`` in the kernel.

    Returns it, its receive ring (None where there is none: read it with
    recv(), with a ``rcvbuf`` receive buffer) and whether the kernel drops
    outgoing packets itself. ``OSError`` says it cannot ``what`` on ``interface``.
    """
    program = libpcap.compile_filter(bpf_filter, libpcap.DLT_RAW)
    # protocol 0 receives nothing until bind(), so no unfiltered packet slips in
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    try:
        _attach_filter(sock, program)
        # the kernel drops outgoing packets for us where it can (4.20 and later); then
        # read() need not ask for each packet's address to check its direction
        kernel_filters_direction = False
        if not any_direction:
            with contextlib.suppress(OSError):
                sock.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
                kernel_filters_direction = True
        ring: RxRing | None = None
        try:
            ring = RxRing(sock, frames=frames, frame_size=frame_size)
        except OSError as exc:  # no ring here: read with recv() instead
            log.info("packet ring unavailable (%s); %s with recv()", exc.strerror, what)
            _big_buffer(sock, rcvbuf)
        ifname = "" if interface == "any" else interface
        sock.bind((ifname, _ETH_P_ALL))  # Python applies htons() itself
        if promiscuous and ifname:
            index = socket.if_nametoindex(ifname)
            mreq = struct.pack("iHH8s", index, _PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot {what} on {interface}: {exc.strerror}") from None
    return sock, ring, kernel_filters_direction


class PacketSocket:
    """An ``AF_PACKET`` socket from ``open_packet_socket`` and its ring: what sniffers share."""

    sock: socket.socket
    ring: RxRing | None

    def fileno(self) -> int:
        """The socket, for the event loop."""
        return self.sock.fileno()

    def drops(self) -> int:
        """Packets the kernel dropped for want of room since the last call (0 if unknown)."""
        return self.ring.drops() if self.ring is not None else 0

    def close(self) -> None:
        """Stop capturing."""
        if self.ring is not None:
            self.ring.close()
        self.sock.close()


class SniffSource(PacketSocket):
    """Packets matching ``PCAP_FILTER`` on ``interface`` (``any``: every interface)."""

    def __init__(
        self,
        interface: str,
        bpf_filter: str,
        *,
        promiscuous: bool = False,
        any_direction: bool = False,
        rcvbuf: int = 16 << 20,
    ) -> None:
        sock, self.ring, self._kernel_filters_direction = open_packet_socket(
            interface, bpf_filter, what="sniff", any_direction=any_direction,
            promiscuous=promiscuous, rcvbuf=rcvbuf,
        )  # fmt: skip
        self.sock = sock
        self.any_direction = any_direction
        self.description = f"sniffing {interface} for '{bpf_filter}'"
        self._addresses = Addresses()
        self._check: Check | None = None
        self._parse: Parse = ip_parser(None, self._addresses)
        self._fast: FastPath[Packet] | None = None
        self._failures: list[Exception] = []  # see ``failures``

    def read(self, check: Check | None = None) -> list[Packet]:
        """Every packet waiting (up to a batch), parsed and screened by ``check``; never blocks.

        What the screen mutes is counted there and left out.
        """
        check_direction = not (self.any_direction or self._kernel_filters_direction)
        if check is not self._check:
            self._check = check
            self._parse = ip_parser(check, self._addresses)
            self._fast = None if check is None else fast_path(check, self._addresses)
        parse = self._parse
        if self.ring is not None:
            found = self.ring.read(_BATCH, parse, skip_outgoing=check_direction, fast=self._fast)
            # woken with nothing in the ring: an error is pending (the interface went away,
            # say). With no recv() to raise it, ask for it, or the event loop would spin.
            if not self.ring.consumed and (
                error := self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            ):
                raise OSError(error, os.strerror(error))
            return found
        packets = []
        recv, recvfrom = self.sock.recv, self.sock.recvfrom
        for _ in range(_BATCH):
            try:
                if check_direction:
                    data, addr = recvfrom(_MAX_READ)
                    if addr[2] == _PACKET_OUTGOING:
                        continue
                else:
                    data = recv(_MAX_READ)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            try:
                packet = parse(data, 0, len(data))
            except Exception as exc:  # this packet alone: the batch goes on
                self._failures.append(exc)
                continue
            if packet is not None:
                packets.append(packet)
        return packets

    @property
    def failures(self) -> list[Exception]:
        """What packets made raise since the reader last looked (it counts and clears them)."""
        return self.ring.failures if self.ring is not None else self._failures


class UdpSource:
    """The UDP server: the SPA port bound on every IPv4 and IPv6 address."""

    def __init__(self, port: int, *, rcvbuf: int = 16 << 20) -> None:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            host = "::"
        except OSError:  # no IPv6 in this kernel
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            host = "0.0.0.0"  # noqa: S104 - a server on the SPA port, as fwknopd's
        try:
            _big_buffer(sock, rcvbuf)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot listen on UDP port {port}: {exc.strerror}") from None
        self.sock = sock
        self.port = port
        self.description = f"UDP server on port {port}"
        # what packets made raise since the reader last looked (it counts and clears them)
        self.failures: list[Exception] = []
        # parsing an address string costs more than the rest of the packet path: remember them
        self._addresses: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}

    def _address(self, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        src = ipaddress.ip_address(text)
        if src.version == 6 and src.ipv4_mapped is not None:
            src = src.ipv4_mapped
        if len(self._addresses) >= _ADDRESS_CACHE:
            self._addresses.clear()
        self._addresses[text] = src
        return src

    def fileno(self) -> int:
        """The socket, for the event loop."""
        return self.sock.fileno()

    def read(self, check: Check | None = None) -> list[Packet]:
        """Every datagram waiting (up to a batch), screened by ``check``; never blocks.

        What the screen mutes is counted there and left out.
        """
        packets: list[Packet] = []
        # what every datagram needs, looked up once per batch (a flood reads many)
        recv, known, address, append = (
            self.sock.recvfrom,
            self._addresses.get,
            self._address,
            packets.append,
        )
        port, muted, new = self.port, MUTED, _new_tuple
        screen = check if check is not None else _unscreened
        for _ in range(_BATCH):
            try:
                data, addr = recv(_MAX_READ)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
                    continue
                raise
            try:
                src = known(addr[0]) or address(addr[0])
                verdict = screen(data, src)
            except Exception as exc:  # this packet alone: the batch goes on
                self.failures.append(exc)
                continue
            if verdict is not muted:  # a muted one: the screen counted it
                # the tuple made directly: Packet(...) runs a Python-level __new__ per packet
                append(new(Packet, (data, src, None, 17, addr[1], port, verdict)))
        return packets

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()


def read_pcap_file(path: Path, bpf_filter: str | None) -> Iterator[Packet]:
    """Packets of a capture file, filtered as fwknopd would (``--pcap-file``)."""
    for linktype, _ts, frame in libpcap.read_file(path, bpf_filter):
        inner = network_layer(linktype, frame)
        packet = None if inner is None else parse_ip(inner)
        if packet is not None:
            yield packet
