"""The shared replay cache on a real redis-server: one atomic SET NX per digest, the local cache
beside it, Redis down (refused or decided locally, said and counted), Redis back (merged)."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwknop_server.config import load_server_config
from fwknop_server.errors import ConfigError
from fwknop_server.processor import Processor, Settings
from fwknop_server.replay import STORES, ReplaySettings, local_store, open_store
from fwknop_server.replay.redis import SharedReplay
from fwknop_server.vocab import Accepted, Packet, Reason, Refused, ReplayUnavailable

from fwknop_core import SpaMessage, build_packet, generate_keys
from tests.helpers.ourd import write_private
from tests.helpers.redis_server import RedisServer, require_redis
from tests.helpers.tls import make_tls
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.redis


def _packet() -> Packet:
    """A packet of its own (the store tells a packet's later digests by the object)."""
    return Packet(b"x", ipaddress.ip_address("198.18.0.2"), ipaddress.ip_address("198.18.0.1"))


D1, D2, D3 = "A" * 43, "B" * 43, "C" * 43


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def _settings(tmp_path: Path, server: RedisServer, name: str = "a", **kw: object) -> ReplaySettings:
    base = ReplaySettings(url=server.url(), path=tmp_path / name / "replay.sqlite", max_age=120)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _store(settings: ReplaySettings) -> SharedReplay:
    store = open_store(settings)
    assert isinstance(store, SharedReplay)
    assert wait_for(lambda: store.up), "never connected"
    return store


def test_redis_urls_choose_the_shared_store() -> None:
    assert {"redis", "rediss"} <= set(STORES)


def test_a_digest_is_set_once_with_its_age_window_plus_skew_as_ttl(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store = _store(_settings(tmp_path, redis_server, prefix="fleet1:", skew=30))
    try:
        expires = time.time() + 100
        assert store.add(D1, _packet(), expires) is True
        assert store.add(D1, _packet(), expires) is False
        client = redis_server.client()
        assert client.get(f"fleet1:{D1}") == b"1"
        ttl = client.pttl(f"fleet1:{D1}")
        assert 120_000 < ttl <= 130_000  # 100 s of the window left, plus 30 s of skew
        assert client.keys("*") == [f"fleet1:{D1}".encode()]  # the prefix, nothing else
    finally:
        store.close()


def test_a_packet_taken_at_one_gateway_is_a_replay_at_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    a = _store(_settings(tmp_path, redis_server, "a"))
    b = _store(_settings(tmp_path, redis_server, "b"))
    try:
        assert a.add(D1, _packet(), time.time() + 100)
        assert not b.add(D1, _packet(), time.time() + 100)
        assert b.add(D2, _packet(), time.time() + 100)
        assert not a.add(D2, _packet(), time.time() + 100)
    finally:
        a.close()
        b.close()


def test_a_replay_to_the_same_gateway_costs_redis_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store = _store(_settings(tmp_path, redis_server))
    try:
        assert store.add(D1, _packet(), time.time() + 100)
        sets = redis_server.command_calls("set")
        for _ in range(50):
            assert not store.add(D1, _packet(), time.time() + 100)
        assert redis_server.command_calls("set") == sets
    finally:
        store.close()


def test_redis_down_decides_on_this_host_says_so_and_merges_back(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fwknop_server.replay")
    a = _store(_settings(tmp_path, redis_server, "a"))
    b = _store(_settings(tmp_path, redis_server, "b"))
    try:
        redis_server.stop()
        assert a.add(D1, _packet(), time.time() + 100) is True  # decided here alone
        assert not a.add(D1, _packet(), time.time() + 100)  # a replay here is still one
        other = _packet()._replace(sport=4)
        assert a.add(D2, other, time.time() + 100)
        assert b.add(D2, other, time.time() + 100)  # the same packet at B: nobody can tell
        assert not a.up and a.errors >= 1 and a.local_only == 2  # packets
        assert any("failed" in r.message and r.levelno == logging.ERROR for r in caplog.records)
        assert any("this host's cache only" in r.message for r in caplog.records)
        redis_server.start()
        assert wait_for(lambda: a.up and b.up)
        client = redis_server.client()
        assert client.exists(f"fwknop:{D1}") and client.exists(f"fwknop:{D2}")
        assert a.merged == 2 and b.merged == 1
        assert a.conflicts + b.conflicts == 1  # D2 was taken at both during the outage
        assert any("taken by another gateway" in r.message for r in caplog.records)
        assert not b.add(D1, _packet(), time.time() + 100)  # converged: A's outage digest is known
    finally:
        a.close()
        b.close()


def test_with_replay_cache_required_redis_down_refuses(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store = _store(_settings(tmp_path, redis_server, required=True))
    try:
        assert store.add(D1, _packet(), time.time() + 100)
        redis_server.stop()
        with pytest.raises(ReplayUnavailable):
            store.add(D2, _packet(), time.time() + 100)
        assert not store.add(D1, _packet(), time.time() + 100)  # known here: still a replay
        assert store.refused_down == 1
        redis_server.start()
        assert wait_for(lambda: store.up)
        assert store.add(D2, _packet(), time.time() + 100)  # nothing was recorded for it
    finally:
        store.close()


def test_a_redis_that_hangs_costs_one_timeout_then_no_more_calls(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store = _store(_settings(tmp_path, redis_server, timeout_ms=50))
    try:
        redis_server.pause()
        assert store.add(D1, _packet(), time.time() + 100)  # timed out, decided here
        assert store.errors == 1 and not store.up
        for n, digest in enumerate((D2, D3)):  # no further call is made from the packet path
            assert store.add(digest, _packet()._replace(sport=n), time.time() + 100)
        assert store.errors == 1 and store.local_only == 3
        redis_server.resume()
        assert wait_for(lambda: store.up)
        assert store.merged == 3
    finally:
        store.close()


def test_a_gateway_starts_while_redis_is_down_and_joins_when_it_comes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    redis_server.stop()
    store = open_store(_settings(tmp_path, redis_server))
    assert isinstance(store, SharedReplay)
    try:
        assert not store.up
        assert store.add(D1, _packet(), time.time() + 100)
        redis_server.start()
        assert wait_for(lambda: store.up)
        assert redis_server.client().exists(f"fwknop:{D1}")
    finally:
        store.close()


def test_the_password_comes_from_a_private_file(tmp_path: Path) -> None:
    require_redis()
    server = RedisServer(tmp_path / "redis", password="s3cret-Pass").start()
    try:
        secret = write_private(tmp_path / "redis.pass", "s3cret-Pass\n")
        store = _store(_settings(tmp_path, server, password_file=secret))
        try:
            assert store.add(D1, _packet(), time.time() + 100)
            assert server.client().exists(f"fwknop:{D1}")
        finally:
            store.close()
        wrong = write_private(tmp_path / "wrong.pass", "nope\n")
        refused = open_store(_settings(tmp_path, server, "w", password_file=wrong))
        assert isinstance(refused, SharedReplay)
        try:
            assert not refused.up  # AUTH failed: not shared, said so
        finally:
            refused.close()
    finally:
        server.stop()


def test_rediss_is_tls_with_the_ca_the_url_names(tmp_path: Path) -> None:
    require_redis()
    tls = make_tls(tmp_path / "tls", "127.0.0.1")
    server = RedisServer(
        tmp_path / "redis", password="s3cret-Pass", tls=(tls.cert, tls.key, tls.ca)
    ).start()  # TLS only: no plain port
    secret = write_private(tmp_path / "redis.pass", "s3cret-Pass\n")
    url = f"{server.url()}?ssl_ca_certs={tls.ca}"
    assert url.startswith("rediss://")
    try:
        store = _store(_settings(tmp_path, server, url=url, password_file=secret))
        try:
            assert store.add(D1, _packet(), time.time() + 100)
            assert not store.add(D1, _packet(), time.time() + 100)
            assert server.client().exists(f"fwknop:{D1}")
        finally:
            store.close()
        # a certificate the URL's CA did not sign, and plain Redis to the TLS port: not shared
        for name, wrong in (
            ("untrusted", server.url()),
            ("plain", f"redis://127.0.0.1:{server.port}/0"),
        ):
            refused = open_store(_settings(tmp_path, server, name, url=wrong, password_file=secret))
            assert isinstance(refused, SharedReplay)
            try:
                assert not refused.up and refused.add(D2, _packet(), time.time() + 100)
                assert refused.local_only == 1  # decided on this host, and counted
            finally:
                refused.close()
        assert not server.client().exists(f"fwknop:{D2}")
    finally:
        server.stop()


def _conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fwknopd.conf"
    path.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\n{text}")
    return path


@pytest.mark.parametrize(
    ("mode", "url", "expected"),
    [
        (0o644, "redis://127.0.0.1:6379/0", "{conf}:3: .*chmod 600"),  # others can read it
        (0o600, "redis://:pw@127.0.0.1:6379/0", "keep one"),  # a password in the URL too
    ],
)
def test_a_password_file_that_cannot_be_used_is_refused(
    tmp_path: Path, mode: int, url: str, expected: str
) -> None:
    secret = tmp_path / "redis.pass"
    secret.write_text("x\n")
    secret.chmod(mode)
    conf = _conf(tmp_path, f"REPLAY_CACHE_URL {url}\nREPLAY_CACHE_PASSWORD_FILE {secret}\n")
    with pytest.raises(ConfigError, match=expected.format(conf=re.escape(str(conf)))):
        ReplaySettings.from_config(load_server_config(conf))


def test_a_bad_redis_url_is_a_config_error(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "REPLAY_CACHE_URL redis://127.0.0.1:6379/notadb\n")
    with pytest.raises(ConfigError, match=f"{conf}:2.*REPLAY_CACHE_URL"):
        ReplaySettings.from_config(load_server_config(conf))


def test_the_redis_keys_are_read_into_the_settings(tmp_path: Path) -> None:
    conf = _conf(
        tmp_path,
        "REPLAY_CACHE_URL rediss://fw@redis.example:6380/2\nREPLAY_CACHE_PREFIX fleet-a:\n"
        "REPLAY_CACHE_REQUIRED Y\nREPLAY_CACHE_TIMEOUT 20\nREPLAY_CACHE_SKEW 5\n",
    )
    settings = ReplaySettings.from_config(load_server_config(conf))
    assert (settings.scheme, settings.prefix, settings.required) == ("rediss", "fleet-a:", True)
    assert (settings.timeout_ms, settings.skew) == (20, 5)


# -- the pipeline: only packets that decrypted reach Redis ---------------------------------

KEYS, OTHER = generate_keys(), generate_keys()
STANZA = (
    f"SOURCE ANY\nKEY_BASE64 {KEYS.rijndael.to_base64()}\nHMAC_KEY_BASE64 {KEYS.hmac.to_base64()}\n"
)


def test_junk_and_packets_failing_the_hmac_never_reach_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    from fwknop_server.access import load_access

    access = tmp_path / "access.conf"
    access.write_text(STANZA)
    store = _store(_settings(tmp_path, redis_server))
    try:
        processor = Processor(load_access([access]), Settings(), replay=store)
        now = time.time()
        msg = SpaMessage.access_request("198.18.0.2", "tcp/22", username="u", now=int(now))
        wrong = build_packet(msg, OTHER.rijndael, hmac_key=OTHER.hmac).encode()
        src = ipaddress.ip_address("198.18.0.2")
        before = redis_server.command_calls("set")
        junk = [b"8" + bytes([65 + i % 26]) * 200 for i in range(200)]
        for payload in [*junk, wrong, wrong[:-4] + b"AAAA"]:
            assert isinstance(processor.process(Packet(payload, src), now), Refused)
        assert redis_server.command_calls("set") == before
        good = Packet(build_packet(msg, KEYS.rijndael, hmac_key=KEYS.hmac).encode(), src)
        accepted = processor.process(good, now)
        assert isinstance(accepted, Accepted)
        # one round trip: the message's digest (it covers every text of the packet) is the
        # fleet's; fwknopd's text digest is kept on this host
        assert redis_server.command_calls("set") == before + 1
        text_digest, message_digest = accepted.opened.replay_digests
        client = redis_server.client()
        assert client.exists(f"fwknop:{message_digest}") and not client.exists(
            f"fwknop:{text_digest}"
        )
        assert store.local.seen(text_digest) and store.local.seen(message_digest)
        replayed = processor.process(good, now)
        assert isinstance(replayed, Refused) and replayed.reason is Reason.REPLAY
    finally:
        store.close()


def test_a_packet_decided_at_one_gateway_is_a_replay_at_another_through_the_pipeline(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    from fwknop_server.access import load_access

    access = tmp_path / "access.conf"
    access.write_text(STANZA)
    a = _store(_settings(tmp_path, redis_server, "a"))
    b = _store(_settings(tmp_path, redis_server, "b"))
    try:
        gateways = [Processor(load_access([access]), Settings(), replay=s) for s in (a, b)]
        now = time.time()
        msg = SpaMessage.access_request("198.18.0.2", "tcp/22", username="u", now=int(now))
        data = build_packet(msg, KEYS.rijndael, hmac_key=KEYS.hmac).encode()
        assert isinstance(gateways[0].process(Packet(data, _packet().src), now), Accepted)
        replayed = gateways[1].process(Packet(data, _packet().src), now)
        assert isinstance(replayed, Refused) and replayed.reason is Reason.REPLAY
    finally:
        a.close()
        b.close()


def test_a_required_cache_that_is_down_refuses_with_its_own_reason(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    from fwknop_server.access import load_access

    access = tmp_path / "access.conf"
    access.write_text(STANZA)
    store = _store(_settings(tmp_path, redis_server, required=True))
    try:
        processor = Processor(load_access([access]), Settings(), replay=store)
        redis_server.stop()
        now = time.time()
        msg = SpaMessage.access_request("198.18.0.2", "tcp/22", username="u", now=int(now))
        packet = Packet(
            build_packet(msg, KEYS.rijndael, hmac_key=KEYS.hmac).encode(), _packet().src
        )
        refused = processor.process(packet, now)
        assert isinstance(refused, Refused) and refused.reason is Reason.REPLAY_UNAVAILABLE
    finally:
        store.close()


def test_the_local_cache_is_the_sqlite_one_of_this_host(tmp_path: Path) -> None:
    settings = ReplaySettings(path=tmp_path / "r.sqlite", max_age=120)
    local = local_store(settings)
    try:
        assert local.path == tmp_path / "r.sqlite"
    finally:
        local.close()
