"""``-d`` / ``DIGEST_FILE``: the replay cache goes where it is configured.

Two daemons with different digest files (``-d``) in one run directory must
never share a replay cache: one's packets are not replays to the other.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

from fwknop_server import cli
from fwknop_server.config import load_server_config
from fwknop_server.replay import ReplaySettings, open_store
from fwknop_server.vocab import Packet

SRC = ipaddress.ip_address("198.18.0.2")


def _settings(tmp_path: Path, conf_text: str = "", *argv: str) -> ReplaySettings:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\n{conf_text}")
    args = cli._parser().parse_args(["-c", str(conf), *argv])
    return ReplaySettings.from_config(load_server_config(conf, cli._overrides(args)))


def test_the_cache_follows_the_digest_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    default = _settings(tmp_path)
    assert (default.path, default.legacy_file) == (run / "replay.sqlite", run / "digest.cache")
    by_option = _settings(tmp_path, "", "-d", str(tmp_path / "a" / "digest.cache"))
    assert by_option.legacy_file == tmp_path / "a" / "digest.cache"
    assert by_option.path == tmp_path / "a" / "digest.cache.sqlite"
    by_file = _settings(tmp_path, f"DIGEST_FILE {tmp_path}/b.cache\n")
    assert by_file.path == tmp_path / "b.cache.sqlite"
    # REPLAY_DB_FILE, where it is set, says where (whatever -d says)
    mine = _settings(tmp_path, f"REPLAY_DB_FILE {tmp_path}/mine.sqlite\n", "-d", "/x/d.cache")
    assert (mine.path, mine.legacy_file) == (tmp_path / "mine.sqlite", Path("/x/d.cache"))


def test_two_daemons_with_different_digest_files_never_share_a_cache(tmp_path: Path) -> None:
    first = open_store(_settings(tmp_path, "", "-d", str(tmp_path / "one.cache")))
    second = open_store(_settings(tmp_path, "", "-d", str(tmp_path / "two.cache")))
    again = None
    assert first is not None and second is not None
    try:
        packet = Packet(b"x", SRC, None, 17, 40000, 62201)
        expires = time.time() + 120
        assert first.add("d" * 43, packet, expires)
        assert second.add("d" * 43, packet, expires)  # not a replay there: another cache
        first.close()
        # the same -d again: the same cache, so the packet is a replay
        again = open_store(_settings(tmp_path, "", "-d", str(tmp_path / "one.cache")))
        assert again is not None and not again.add("d" * 43, packet, expires)
    finally:
        second.close()
        if again is not None:
            again.close()
    assert (tmp_path / "one.cache.sqlite").exists() and (tmp_path / "two.cache.sqlite").exists()
    assert not (tmp_path / "run" / "replay.sqlite").exists()
