"""The parsed-profiles cache: used only for the very text it was made from, never a stale one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fwknop_tui.wallet.locations import cache_dir
from fwknop_tui.wallet.profiles import ProfileStore

PROBE = (
    "import sys; from fwknop_tui.wallet.profiles import ProfileStore; "
    "print(ProfileStore().get('lab').host, 'tomllib' in sys.modules)"
)


def _host_and_parsed() -> tuple[str, bool]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=os.environ
    ).stdout.split()
    return out[0], out[1] == "True"


def test_an_unchanged_file_is_not_parsed_again(private_config: Path) -> None:
    private_config.mkdir(parents=True)
    (private_config / "profiles.toml").write_text('[profiles.lab]\nhost = "198.18.0.1"\n')
    assert _host_and_parsed() == ("198.18.0.1", True)
    assert _host_and_parsed() == ("198.18.0.1", False)
    # the same length, another text: parsed again, never the stale answer
    (private_config / "profiles.toml").write_text('[profiles.lab]\nhost = "198.18.0.9"\n')
    assert _host_and_parsed() == ("198.18.0.9", True)


@pytest.mark.parametrize("damage", ["garbage", "foreign"])
def test_a_damaged_or_foreign_cache_is_ignored(private_config: Path, damage: str) -> None:
    private_config.mkdir(parents=True)
    profiles = private_config / "profiles.toml"
    profiles.write_text('[profiles.lab]\nhost = "198.18.0.1"\n')
    store = ProfileStore(profiles)
    assert store.get("lab").host == "198.18.0.1"
    cache = cache_dir() / "profiles.marshal"
    assert cache.is_file() and cache.stat().st_mode & 0o077 == 0
    if damage == "garbage":
        cache.write_bytes(b"\x00not marshal")
    else:  # writable by others: whatever it says is not trusted
        import marshal

        cache.write_bytes(marshal.dumps((str(profiles), profiles.read_text(), {"profiles": {}})))
        cache.chmod(0o666)
    assert store.get("lab").host == "198.18.0.1"
