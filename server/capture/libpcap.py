"""The few libpcap calls we need, through ctypes: compile a filter, read a capture file.

libpcap compiles ``PCAP_FILTER`` exactly as fwknopd's pcap_compile() does, so
every filter an administrator wrote keeps its meaning; we attach the result
to our own packet socket (``sniff.py``). ``--pcap-file`` reads a capture
(pcap or pcapng) with libpcap, applying the same filter, as fwknopd does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["DLT_RAW", "PcapError", "compile_filter", "read_file", "read_file_filtered"]

DLT_RAW = 12  # packets that start at the IP header (what a SOCK_DGRAM packet socket reads)
_PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
_ERRBUF = 256


class PcapError(Exception):
    """libpcap is missing, or refused a filter or a file."""


class _Insn(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    )


class _Program(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn)))


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _PktHdr(ctypes.Structure):
    _fields_ = (("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32))


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB  # noqa: PLW0603 - loaded once, on first use
    if _LIB is not None:
        return _LIB
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise PcapError(f"libpcap is not installed ({exc}); apt-get install libpcap0.8") from None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_open_offline.restype = ctypes.c_void_p
    lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32,
    ]  # fmt: skip
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_datalink.argtypes = [ctypes.c_void_p]
    lib.pcap_next_ex.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.POINTER(_PktHdr)),
        ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
    ]
    lib.pcap_offline_filter.argtypes = [
        ctypes.POINTER(_Program), ctypes.POINTER(_PktHdr), ctypes.POINTER(ctypes.c_ubyte),
    ]  # fmt: skip
    _LIB = lib
    return lib


def _compile(handle: int, expression: str) -> _Program:
    lib = _lib()
    program = _Program()
    if (
        lib.pcap_compile(
            handle, ctypes.byref(program), expression.encode(), 1, _PCAP_NETMASK_UNKNOWN
        )
        != 0
    ):
        message = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
        raise PcapError(f"PCAP_FILTER {expression!r}: {message}")
    return program


def compile_filter(expression: str, linktype: int = DLT_RAW, snaplen: int = 65535) -> bytes:
    """The classic BPF program for ``expression``, as the ``struct sock_filter`` array."""
    lib = _lib()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise PcapError("pcap_open_dead failed")
    try:
        program = _compile(handle, expression)
        try:
            return b"".join(
                struct.pack("HBBI", i.code, i.jt, i.jf, i.k)
                for i in program.bf_insns[: program.bf_len]
            )
        finally:
            lib.pcap_freecode(ctypes.byref(program))
    finally:
        lib.pcap_close(handle)


def read_file(path: Path, expression: str | None) -> Iterator[tuple[int, float, bytes]]:
    """(link type, timestamp, frame) of each packet of a capture file matching ``expression``."""
    for linktype, stamp, frame, _matched in read_file_filtered(path, [expression]):
        yield linktype, stamp, frame


def read_file_filtered(
    path: Path, expressions: Sequence[str | None]
) -> Iterator[tuple[int, float, bytes, tuple[bool, ...]]]:
    """Each packet matching one of ``expressions`` (None: everything), and which it matched.

    For a reader with two consumers (SPA and the knock listener) that must
    see one file's packets in their order: one pass, each filter run on each.
    """
    lib = _lib()
    errbuf = ctypes.create_string_buffer(_ERRBUF)
    handle = lib.pcap_open_offline(str(path).encode(), errbuf)
    if not handle:
        raise PcapError(f"{path}: {errbuf.value.decode(errors='replace')}")
    programs: list[_Program | None] = []
    try:
        linktype = lib.pcap_datalink(handle)
        for expression in expressions:
            programs.append(_compile(handle, expression) if expression else None)
        header = ctypes.POINTER(_PktHdr)()
        data = ctypes.POINTER(ctypes.c_ubyte)()
        while True:
            rc = lib.pcap_next_ex(handle, ctypes.byref(header), ctypes.byref(data))
            if rc == -2:  # end of file
                return
            if rc < 0:
                message = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
                raise PcapError(f"{path}: {message}")
            if rc == 0:
                continue
            matched = tuple(
                program is None
                or bool(lib.pcap_offline_filter(ctypes.byref(program), header, data))
                for program in programs
            )
            if not any(matched):
                continue
            hdr = header.contents
            frame = ctypes.string_at(data, hdr.caplen)
            yield linktype, hdr.ts.tv_sec + hdr.ts.tv_usec / 1e6, frame, matched
    finally:
        for program in programs:
            if program is not None:
                lib.pcap_freecode(ctypes.byref(program))
        lib.pcap_close(handle)
