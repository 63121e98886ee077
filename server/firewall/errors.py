"""The one error of the firewall layer: runners and backends both raise it."""

from __future__ import annotations

__all__ = ["FirewallError"]


class FirewallError(Exception):
    """A firewall command failed or the firewall is not set up as needed."""
