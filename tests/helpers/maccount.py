"""Counting HMAC computations: every keyed state the core makes, wrapped; each copy is one MAC."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fwknop_core import _keys, _primitives


class Counting:
    """A keyed HMAC state that counts how often a MAC is computed from it (each copy is one)."""

    made = 0

    def __init__(self, state: _primitives.Keyed) -> None:
        self.state = state

    def copy(self) -> Counting:
        Counting.made += 1
        return Counting(self.state.copy())

    def update(self, data: bytes, /) -> None:
        self.state.update(data)

    def finalize(self) -> bytes:
        return self.state.finalize()


@contextmanager
def counting_macs(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Counting]]:
    """While inside, keys made by the core count their MACs in ``Counting.made``."""
    real = _primitives.keyed
    with monkeypatch.context() as patch:
        patch.setattr(_keys, "keyed", lambda secret, kind: Counting(real(secret, kind)))
        Counting.made = 0
        yield Counting
