"""Fixtures for tests against the real fwknop 2.6.10 binaries."""

from __future__ import annotations

import pytest

from tests.helpers.cfwknopd import real_fwknop_missing
from tests.helpers.netns import unavailable_reason


@pytest.fixture(scope="session")
def real_fwknop() -> None:
    """Skip (fail in CI) unless /usr/bin/fwknop and /usr/sbin/fwknopd are installed."""
    if reason := real_fwknop_missing():
        pytest.skip(reason)


@pytest.fixture(scope="session")
def namespaces() -> None:
    """Skip (fail in CI) unless we can create network namespaces."""
    if reason := unavailable_reason():
        pytest.skip(reason)
