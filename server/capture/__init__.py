"""Capture: where packets come from, and the source fwknopd.conf chooses.

Every source speaks ``Source``: a file descriptor the event loop waits on,
and a non-blocking ``read`` that hands over the packets waiting, each
screened by the flood screen's ``check`` (what the screen mutes is counted
there and never becomes a ``Packet``). ``open_source`` takes the first
source in ``SOURCES`` whose condition the settings meet; a new source is a
module and a line there (and its keys in ``CaptureSettings``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ..config import ServerConfig
from ..vocab import Packet
from .frames import Check
from .sources import SniffSource, UdpSource

__all__ = ["SOURCES", "CaptureSettings", "Source", "open_source"]


class Source(Protocol):
    """A capture source: a file descriptor to wait on and a non-blocking read.

    A source may also have ``failures``, a list of the exceptions single
    packets made raise while it read them (each such packet dropped, the
    rest of the batch read): the dispatcher counts and clears it.
    """

    description: str

    def fileno(self) -> int:
        """What the event loop waits on."""
        ...

    def read(self, check: Check | None = None) -> list[Packet]:
        """The packets waiting (a batch at most), screened by ``check``; never blocks."""
        ...

    def close(self) -> None:
        """Stop capturing."""
        ...


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """What fwknopd.conf says about capture (a SIGHUP that changes it reopens capture)."""

    interface: str = "eth0"  # PCAP_INTF
    bpf_filter: str = "udp port 62201"  # PCAP_FILTER
    promiscuous: bool = False  # ENABLE_PCAP_PROMISC
    any_direction: bool = False  # ENABLE_PCAP_ANY_DIRECTION
    udp_server: bool = False  # ENABLE_UDP_SERVER
    udp_port: int = 62201  # UDPSERV_PORT
    rcvbuf: int = 16 << 20  # UDPSERV_RCVBUF
    pcap_file: str | None = None  # PCAP_FILE (--pcap-file): read it instead
    tcp_server: bool = False  # ENABLE_TCP_SERVER (not with the UDP server or NFQUEUE)
    tcp_port: int = 62201  # TCPSERV_PORT
    nfq: bool = False  # ENABLE_NFQ_CAPTURE (-n): read NFQUEUE (the firewall queues the port)
    nfq_queue: int = 1  # NFQ_QUEUE_NUMBER

    @classmethod
    def from_config(cls, config: ServerConfig) -> CaptureSettings:
        """The capture settings of ``config``."""
        udp_server = config.flag("ENABLE_UDP_SERVER")
        nfq = config.flag("ENABLE_NFQ_CAPTURE")
        return cls(
            interface=config.required("PCAP_INTF"),
            bpf_filter=config.required("PCAP_FILTER"),
            promiscuous=config.flag("ENABLE_PCAP_PROMISC"),
            any_direction=config.flag("ENABLE_PCAP_ANY_DIRECTION"),
            udp_server=udp_server,
            udp_port=config.number("UDPSERV_PORT"),
            rcvbuf=config.number("UDPSERV_RCVBUF"),
            pcap_file=config.text("PCAP_FILE") or None,
            tcp_server=config.flag("ENABLE_TCP_SERVER") and not (udp_server or nfq),
            tcp_port=config.number("TCPSERV_PORT"),
            nfq=nfq,
            nfq_queue=config.number("NFQ_QUEUE_NUMBER"),
        )

    def on_reload(self, running: CaptureSettings) -> CaptureSettings:
        """These settings as a SIGHUP applies them to ``running`` capture: NFQUEUE's switch
        and queue stay as at start (restart-only: the firewall made its queue rule once)."""
        return replace(self, nfq=running.nfq, nfq_queue=running.nfq_queue)

    @property
    def reopens(self) -> bool:
        """Whether a reload that changed capture keys reopens this capture (NFQUEUE reads none)."""
        return not self.nfq


def _nfqueue(settings: CaptureSettings) -> Source:
    from .nfqueue import NfqueueSource  # noqa: PLC0415 - its library only when asked for

    return NfqueueSource(settings.nfq_queue)


def _udp(settings: CaptureSettings) -> Source:
    return UdpSource(settings.udp_port, rcvbuf=settings.rcvbuf)


def _sniff(settings: CaptureSettings) -> Source:
    return SniffSource(
        settings.interface,
        settings.bpf_filter,
        promiscuous=settings.promiscuous,
        any_direction=settings.any_direction,
        rcvbuf=settings.rcvbuf,
    )


# in order: the first whose condition holds is opened (fwknopd's order: NFQUEUE, the UDP
# server, sniffing)
SOURCES: tuple[tuple[str, Callable[[CaptureSettings], bool], Callable[..., Source]], ...] = (
    ("nfqueue", lambda s: s.nfq, _nfqueue),
    ("udp", lambda s: s.udp_server, _udp),
    ("sniff", lambda _s: True, _sniff),
)


def open_source(settings: CaptureSettings) -> Source:
    """The live capture ``settings`` ask for (``OSError`` if it cannot be had)."""
    for _name, wanted, make in SOURCES:
        if wanted(settings):
            source: Source = make(settings)
            return source
    raise LookupError("no capture source")  # pragma: no cover - sniffing always applies
