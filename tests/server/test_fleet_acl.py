"""One Redis for several fleets, each with a Redis user of its own limited to its key prefix.

The README's "Several gateways" section gives this ACL rule; here it is
proven on a real redis-server: it is all a gateway needs (the replay cache
and grant sharing work under it, without a single error), and one fleet's
user can neither read nor write the other fleet's keys, nor its grants.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fwknop_server.grantsync import GrantSync, SyncSettings
from fwknop_server.replay import ReplaySettings, open_store
from fwknop_server.replay.redis import SharedReplay
from fwknop_server.vocab import Grant, Packet

from fwknop_core import MessageType
from tests.helpers.ourd import write_private
from tests.helpers.redis_server import RedisServer, require_redis
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.redis

# the rule the README gives, per fleet (NAME: the fleet's user and key prefix)
RULE = (
    "{name} on >{password} resetkeys ~{name}:* resetchannels -@all "
    "+ping +set +exists +xadd +xread +client|setname +select"
)
PASSWORDS = {"fleet-a": "pass-of-fleet-a", "fleet-b": "pass-of-fleet-b"}
DIGEST = "D" * 43


class _Direct:
    """Stands in for the daemon's loop: a received grant is applied at once, on the reader."""

    def call_soon_threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        fn(*args)


def _settings(tmp_path: Path, server: RedisServer, name: str) -> ReplaySettings:
    secret = write_private(tmp_path / f"{name}.pass", PASSWORDS[name] + "\n")
    return ReplaySettings(
        url=f"redis://{name}@127.0.0.1:{server.port}/0",
        password_file=secret,
        prefix=f"{name}:",
        path=tmp_path / name / "replay.sqlite",
        max_age=120,
    )


def test_a_redis_user_per_fleet_is_all_a_gateway_needs_and_keeps_fleets_apart(
    tmp_path: Path,
) -> None:
    require_redis()
    users = [RULE.format(name=name, password=pw) for name, pw in PASSWORDS.items()]
    server = RedisServer(tmp_path / "redis", password="admin-pass", users=users).start()
    settings = {name: _settings(tmp_path, server, name) for name in PASSWORDS}
    stores: list[SharedReplay] = []
    members: list[GrantSync] = []
    try:
        # the replay cache under each fleet's own user: the same digest is new to each fleet
        for name in PASSWORDS:
            store = open_store(settings[name])
            assert isinstance(store, SharedReplay)
            stores.append(store)
            assert wait_for(lambda s=store: s.up), name
            packet = Packet(b"x", ipaddress.ip_address("198.18.0.2"))
            assert store.add(DIGEST, packet, time.time() + 100)
        admin = server.client()
        assert admin.exists(f"fleet-a:{DIGEST}") and admin.exists(f"fleet-b:{DIGEST}")
        # grant sharing in fleet A, under its user: one member's grant reaches the other
        received: list[tuple[str, Grant]] = []
        for member in ("a1", "a2"):
            sync = GrantSync(
                SyncSettings("edge", settings["fleet-a"]),
                lambda grant, by: received.append((by, grant)),
                member=member,
            )
            members.append(sync)
            sync.start(_Direct())
        grant = Grant(
            source=ipaddress.ip_address("198.18.100.1"),
            destination=None,
            ports=(("tcp", 22),),
            timeout=60,
            expires=int(time.time()) + 60,
            stanza=1,
            username="alice",
            message_type=MessageType.ACCESS,
        )
        members[0].publish(grant)
        assert wait_for(lambda: received)
        assert received == [("a1", grant)]  # a2 applied it; a1 skipped its own
        assert [s.errors for s in (*stores, *members)] == [0, 0, 0, 0]  # nothing was denied
        # fleet B's user can touch nothing of fleet A's, nor the server
        import redis
        from redis.exceptions import NoPermissionError

        fleet_b = redis.Redis(port=server.port, username="fleet-b", password=PASSWORDS["fleet-b"])
        for forbidden in (
            lambda: fleet_b.set(f"fleet-a:{'E' * 43}", b"1", nx=True),
            lambda: fleet_b.exists(f"fleet-a:{DIGEST}"),
            lambda: fleet_b.xadd("fleet-a:grants:edge", {"grant": "{}"}),
            lambda: fleet_b.xread({"fleet-a:grants:edge": "0"}),
            lambda: fleet_b.delete(f"fleet-b:{DIGEST}"),  # not even its own: no need
            fleet_b.flushall,
            lambda: fleet_b.keys("*"),
        ):
            with pytest.raises(NoPermissionError):
                forbidden()
        fleet_b.close()
    finally:
        for sync in members:
            sync.stop()
        for store in stores:
            store.close()
        server.stop()
