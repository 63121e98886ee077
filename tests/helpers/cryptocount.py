"""Counting the x25519 mode's cryptography: AEAD verifications and key derivations, per packet.

``counting_x25519`` wraps the core's ChaCha20-Poly1305 (every AEAD a key
made inside it holds counts its ``decrypt`` calls: one verification each)
and its derivation (``X25519SharedKey.derive``: one X25519 and one HKDF
each). Keyrings must be built inside it for their AEADs to count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import fwknop_core._x25519 as x25519_module
from fwknop_core import X25519SharedKey


class _CountingAead:
    """A ChaCha20-Poly1305 that counts its verifications (``decrypt``) and seals."""

    def __init__(self, calls: Counter[str], real: Any) -> None:
        self._calls, self._real = calls, real

    def decrypt(self, nonce: bytes, data: bytes, associated: bytes | None) -> bytes:
        self._calls["aead"] += 1
        result: bytes = self._real.decrypt(nonce, data, associated)
        return result

    def encrypt(self, nonce: bytes, data: bytes, associated: bytes | None) -> bytes:
        self._calls["seal"] += 1
        result: bytes = self._real.encrypt(nonce, data, associated)
        return result


@contextmanager
def counting_x25519(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """While inside: ``aead`` (verifications), ``seal`` and ``derive`` counted in the Counter."""
    calls: Counter[str] = Counter()
    real_aead = x25519_module.ChaCha20Poly1305
    real_derive = X25519SharedKey.derive.__func__  # type: ignore[attr-defined]

    def derive(cls: type[X25519SharedKey], *args: Any) -> X25519SharedKey:
        calls["derive"] += 1
        made: X25519SharedKey = real_derive(cls, *args)
        return made

    with monkeypatch.context() as patch:
        patch.setattr(
            x25519_module, "ChaCha20Poly1305", lambda key: _CountingAead(calls, real_aead(key))
        )
        patch.setattr(X25519SharedKey, "derive", classmethod(derive))
        yield calls
