"""A fleet of our fwknopd on one real redis-server: gateways in namespaces of their own, knocked
by the real fwknop client; each proves what an operator of several gateways relies on.

* A packet accepted at gateway A and replayed to gateway B is refused at B.
* In a sync group, a grant made at A opens B (and C) for the same client, until the same
  moment: both close it on time; nothing received is shared again.
* A member that starts later opens what the group still holds.
* Redis stopped mid-run: the gateway that may stand in decides on its own cache and says so,
  the one with REPLAY_CACHE_REQUIRED refuses; Redis back: what was recorded and granted
  meanwhile is merged and shared, and the fleet agrees again.
* Redis that hangs (SIGSTOP): a knock is still granted; the packet loop is not held up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.cfwknopd import fwknop_test_packet
from tests.helpers.fleet import CLIENT, Fleet, fleet, gateway_ip
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.metrics import promtool_check, sample, scrape
from tests.helpers.netns import REAL_KNOCK_MARKS
from tests.helpers.ourd import OurFwknopd
from tests.helpers.redis_server import require_redis
from tests.helpers.wait import DEADLINE, wait_for

pytestmark = [*REAL_KNOCK_MARKS, pytest.mark.redis]

KEYS = generate_keys()
GRANT = 20  # s: long enough for the checks made while the group's grant is open, on a slow machine


def _gateway(
    f: Fleet, index: int, workdir: Path, *, timeout: int = 30, extra: str = ""
) -> OurFwknopd:
    conf = (
        f"REPLAY_CACHE_URL {f.redis_url(index)}\nGRANT_SYNC_GROUP ha1\n"
        f"REPLAY_CACHE_PREFIX test:\nMETRICS_LISTEN 9822\n{extra}"
    )
    return OurFwknopd(
        f.gateways[index],
        workdir / f"gw{index}",
        interface=f.client_ifs[index],
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT {timeout}\n",
        conf_extra=conf,
        args=["-v"],
    )


def _packet(home: Path, index: int = 0, port: int = 22) -> str:
    """A packet of the real client for the client's address, to gateway ``index``."""
    args = ["-D", gateway_ip(index), *key_args(KEYS), "-a", CLIENT, "-A", f"tcp/{port}"]
    home.mkdir(parents=True, exist_ok=True)
    data, _fields = fwknop_test_packet(args, home)
    return data


def _status(daemon: OurFwknopd) -> dict[str, object]:
    res = daemon.ns.run(daemon.command("--status", "--json"), check=False)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    data: dict[str, object] = json.loads(res.stdout)
    return data


def _expiry(daemon: OurFwknopd) -> float | None:
    """Seconds until the client's grant expires in the gateway's nftables set, if it has one."""
    res = daemon.ns.run(["nft", "-j", "list", "set", "inet", "filter", "fwknop_in4"], check=False)
    for item in json.loads(res.stdout or b"{}").get("nftables", []):
        for elem in item.get("set", {}).get("elem", []):
            value = elem.get("elem", {})
            parts = value.get("val", {}).get("concat", [])
            if parts and parts[0] == CLIENT:
                return float(value.get("expires", 0))
    return None


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Fleet]:
    require_redis()
    with fleet(tmp_path, gateways=3) as made:
        yield made


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Fleet]:
    require_redis()
    with fleet(tmp_path, gateways=2) as made:
        yield made


def test_a_replay_to_another_gateway_is_refused_and_a_grant_opens_the_whole_group(
    three: Fleet, tmp_path: Path
) -> None:
    f = three
    gws = [_gateway(f, i, tmp_path, timeout=GRANT).start() for i in range(3)]
    for i in range(3):
        assert not f.tcp_open(i), f"gateway {i} is open before any knock"
    # the real client knocks at A: A opens, and so do B and C, for the same client
    real_knock(f.client, tmp_path / "home", gateway_ip(0), "-A", "tcp/22",
               keys=key_args(KEYS), allow=CLIENT)  # fmt: skip
    assert f.opens(0) and f.opens(1) and f.opens(2)
    assert gws[1].wait_log("grant shared by") and gws[2].wait_log("grant shared by")
    # the same moment of expiry everywhere (the sets' timeouts agree to a second or two) ...
    expiries = [_expiry(gw) for gw in gws]
    assert all(e is not None for e in expiries), expiries
    assert max(expiries) - min(expiries) <= 2.5, expiries  # type: ignore[type-var, operator]
    # ... and it is kept: every gateway closes once the grant's time is over
    assert all(f.closes(i, timeout=GRANT + DEADLINE) for i in range(3))
    # a packet taken at A and replayed to B is refused at B; A granted it once
    packet = _packet(tmp_path / "home2")
    f.send(0, packet)
    assert gws[0].wait_log("opening tcp/22 for 198.18.100.1")
    f.send(1, packet)
    assert gws[1].wait_log("replayed packet")
    assert "opening tcp/22" not in gws[1].log().split("grant shared by")[-1].split("\n", 1)[1]
    # received grants are never shared again: the stream holds A's two grants, nothing more
    assert f.redis.cli("XLEN", "test:grants:ha1").strip() == "2"
    status = _status(gws[1])
    assert status["grant_sync"]["received"] == 2  # type: ignore[index]
    assert status["grant_sync"]["published"] == 0  # type: ignore[index]
    assert status["refusals"]["replay"] == 1  # type: ignore[index]


def test_a_member_that_starts_later_opens_what_the_group_holds(two: Fleet, tmp_path: Path) -> None:
    f = two
    a = _gateway(f, 0, tmp_path, timeout=120).start()
    f.send(0, _packet(tmp_path / "home"))
    assert a.wait_log("opening tcp/22 for 198.18.100.1") and f.opens(0)
    assert not f.tcp_open(1)
    b = _gateway(f, 1, tmp_path).start()
    assert f.opens(1), b.log()
    assert "grant shared by" in b.log()


def test_redis_stopped_mid_run_then_back_the_fleet_converges(two: Fleet, tmp_path: Path) -> None:
    f = two
    a = _gateway(f, 0, tmp_path, timeout=60).start()  # may stand in for Redis (the default)
    b = _gateway(f, 1, tmp_path, timeout=60, extra="REPLAY_CACHE_REQUIRED Y\n").start()
    assert a.wait_log("shared on Redis") and b.wait_log("shared on Redis")
    f.redis.stop()
    # A decides on its own cache, and says so; B refuses: it may not decide without Redis
    p1, p2 = _packet(tmp_path / "h1"), _packet(tmp_path / "h2", 1)
    f.send(0, p1)
    assert a.wait_log("opening tcp/22 for 198.18.100.1"), a.log()
    assert "checked against this host's cache only" in a.log()
    assert f.opens(0)
    f.send(1, p2)
    assert b.wait_log("shared replay cache unreachable"), b.log()
    assert not f.tcp_open(1)  # nothing granted at B, and A's grant cannot reach it yet
    f.send(0, p1)  # a replay to A is still one
    assert a.wait_log("replayed packet")
    assert _status(a)["replay"]["local_only"] == 1  # type: ignore[index]
    # Redis back: A merges what it recorded and shares the grant it made meanwhile
    f.redis.start()
    assert a.wait_log("digest(s) recorded meanwhile merged"), a.log()
    assert f.opens(1), b.log()  # the outage's grant reached B
    assert b.wait_log("digest(s) recorded meanwhile merged"), b.log()  # B's cache is back too
    f.send(1, p1)  # and the outage's packet is known to the fleet now
    assert b.wait_log("replayed packet"), b.log()
    assert _status(b)["replay"]["up"] == 1.0  # type: ignore[index]
    # what a monitoring system saw: the outage, the stand-in, the merge, the shared grant
    text = scrape(a.ns)
    promtool_check(text)
    assert sample(text, "fwknopd_redis_up") == 1
    assert sample(text, "fwknopd_replay_local_only_total") == 1
    assert sample(text, "fwknopd_replay_merged_total") == 2  # the packet's two digests
    assert sample(text, "fwknopd_replay_redis_errors_total") >= 1
    assert sample(text, "fwknopd_grant_sync_published_total") == 1
    text = scrape(b.ns)
    assert sample(text, "fwknopd_refusals_total", reason="replay_unavailable") == 1
    assert sample(text, "fwknopd_replay_refused_unavailable_total") == 1
    assert sample(text, "fwknopd_grants_total", stanza="1", backend="nftables", origin="group") == 1


def test_a_redis_that_hangs_does_not_hold_up_a_knock(two: Fleet, tmp_path: Path) -> None:
    f = two
    a = _gateway(f, 0, tmp_path, timeout=30).start()
    assert a.wait_log("shared on Redis")
    f.redis.pause()
    try:
        f.send(0, _packet(tmp_path / "h1"))
        assert a.wait_log("opening tcp/22 for 198.18.100.1"), a.log()
        assert "TimeoutError" in a.log()  # the one call that waited, then the host's own cache
        assert f.opens(0)
        # the loop went on: a second knock is decided without touching Redis again
        f.send(0, _packet(tmp_path / "h2", port=23))
        assert a.wait_log("opening tcp/23 for 198.18.100.1"), a.log()
        assert a.log().count("failed (TimeoutError") == 1  # bounded: not one hang per packet
    finally:
        f.redis.resume()
    assert a.wait_log("digest(s) recorded meanwhile merged")
    assert wait_for(lambda: _status(a)["replay"]["merged"] == 4)  # type: ignore[index]
