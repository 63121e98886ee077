"""A backend that only logs: for the client's demo and for trying a configuration safely."""

from __future__ import annotations

import logging

from ..config import ServerConfig
from .base import Firewall, NatOpening, Opening
from .runner import Tools

__all__ = ["LogOnly"]

log = logging.getLogger("fwknop_server.firewall")


class LogOnly(Firewall):
    """``FIREWALL_TYPE log``: grants are logged and remembered, nothing is opened."""

    name = "log"
    supports_ipv6 = True
    in_process = True
    supports_nat = True
    supports_nat_ipv6 = True

    @classmethod
    def from_config(cls, config: ServerConfig, tools: Tools) -> LogOnly:
        """Nothing to read: nothing is ever flushed (nothing is ever opened)."""
        return cls(flush_at_init=False, flush_at_exit=False)

    def start(self, now: float) -> None:
        """Nothing to prepare."""
        log.info("firewall: log only (nothing will be opened)")

    def _apply(self, wanted: list[tuple[Opening, Opening | None]], now: int) -> None:
        for opening, _current in wanted:
            log.info(
                "would open %s/%d for %s until %d",
                opening.proto,
                opening.port,
                opening.source,
                opening.expires,
            )

    def _apply_nat(self, opening: NatOpening, current: NatOpening | None, now: int) -> None:
        nat = opening.nat
        log.info(
            "would NAT %s/%d for %s to %s:%d until %d",
            nat.proto, nat.port, opening.source, nat.target, nat.nat_port, opening.expires,
        )  # fmt: skip

    def flush(self) -> None:
        """Forget everything."""
        self.open.clear()
        self.nat_open.clear()

    def listing(self) -> str:
        """What would be open."""
        return (
            "\n".join(
                f"{o.source} {o.proto}/{o.port} until {o.expires}" for o in self.open.values()
            )
            or "# nothing open"
        )
