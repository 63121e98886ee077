"""Fixtures for the core tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.gpghome import GpgHomes, build_homes, stop_agents


@pytest.fixture(scope="session")
def gpg_homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgHomes]:
    """Server and client GnuPG homes with the vector keys (needs the gpg binary)."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    root: Path = tmp_path_factory.mktemp("gnupg")
    homes = build_homes(root)
    yield homes
    stop_agents(homes)
