"""The host's nftables base chains: which one holds its input (or forward) policy.

Shared by the plain backend (``nftables.py``: grants go in the host's input
chain) and NAT (``nftnat.py``: forwarded traffic is accepted in the host's
forward chain). Pure: it reads a ruleset already listed as nft JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChainRef", "describe", "filter_base_chains", "objects", "prefer_dropping"]

Json = dict[str, Any]


class ChainRef:
    """A table and a chain in it."""

    def __init__(self, family: str, table: str, chain: str) -> None:
        self.family = family
        self.table = table
        self.chain = chain

    def __repr__(self) -> str:
        return f"{self.family} {self.table} {self.chain}"

    @classmethod
    def of(cls, chain: Json) -> ChainRef:
        """From one ``chain`` object of ``nft -j list ruleset``."""
        return cls(chain["family"], chain["table"], chain["name"])


def objects(output: Json | None, kind: str) -> list[Json]:
    """The ``kind`` objects (``chain``, ``rule``, ``set``, ``table``...) of an nft JSON listing."""
    if not output:
        return []
    return [item[kind] for item in output.get("nftables", []) if kind in item]


def filter_base_chains(
    ruleset: Json | None, hook: str, *, skip_table: str | None = None
) -> list[Json]:
    """The ``inet``/``ip`` filter base chains on ``hook``, except ``skip_table``'s."""
    return [
        c
        for c in objects(ruleset, "chain")
        if c.get("hook") == hook
        and c.get("type") == "filter"
        and c["family"] in ("inet", "ip")
        and c["table"] != skip_table
    ]


def prefer_dropping(chains: list[Json]) -> list[Json]:
    """Of several candidate chains, those whose policy is drop (if any are)."""
    if len(chains) > 1:
        dropping = [c for c in chains if c.get("policy") == "drop"]
        return dropping or chains
    return chains


def describe(chains: list[Json]) -> str:
    """``family table name`` of each chain, for an error message."""
    return ", ".join(f"{c['family']} {c['table']} {c['name']}" for c in chains) or "none"
