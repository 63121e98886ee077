"""Metrics and status of a running fwknopd: the Prometheus exposition checked by the real
``promtool check metrics``, its figures after real knocks and junk, ``--status --json`` from the
status socket, and the endpoint off unless asked for and on loopback when given a bare port."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwknop_server.config import listen_address, load_server_config, redact_url
from fwknop_server.errors import ConfigError

from fwknop_core import generate_keys
from tests.helpers.knock import key_args, real_knock, stanza_keys
from tests.helpers.metrics import promtool_check, sample, scrape
from tests.helpers.netns import NetPair, drop_policy_nft, net_pair, wait_for
from tests.helpers.ourd import FWKNOPD, OurFwknopd

KEYS, OTHER = generate_keys(), generate_keys()


@pytest.fixture
def pair() -> Iterator[NetPair]:
    with net_pair("mx") as made:
        drop_policy_nft(made.server)
        made.listen_tcp(22)
        yield made


def _daemon(pair: NetPair, tmp_path: Path, conf_extra: str = "") -> OurFwknopd:
    """Our fwknopd with one stanza (30 s grants), started."""
    return OurFwknopd(
        pair.server,
        tmp_path / "d",
        interface=pair.server_if,
        access_conf=f"SOURCE ANY\n{stanza_keys(KEYS)}FW_ACCESS_TIMEOUT 30\n",
        conf_extra=conf_extra,
    ).start()


@pytest.mark.usefixtures("real_fwknop", "namespaces")
@pytest.mark.interop
@pytest.mark.netns
def test_metrics_pass_promtool_and_count_what_happened(pair: NetPair, tmp_path: Path) -> None:
    daemon = _daemon(pair, tmp_path, "METRICS_LISTEN 9822\n")
    assert daemon.wait_log("metrics at http://127.0.0.1:9822/metrics")
    real_knock(pair.client, tmp_path / "home", pair.server_ip, "-A", "tcp/22",
               keys=key_args(KEYS), allow=pair.client_ip)  # fmt: skip
    real_knock(pair.client, tmp_path / "home", pair.server_ip, "-A", "tcp/22",
               keys=key_args(OTHER), allow=pair.client_ip)  # fmt: skip  # the wrong HMAC key
    pair.send_udp(["8" + "A" * 200] * 5)  # junk
    assert pair.wait_open(22)
    assert daemon.wait_log("HMAC mismatch")

    def counted() -> bool:
        return sample(scrape(pair.server), "fwknopd_packets_total") >= 7

    assert wait_for(counted)
    text = scrape(pair.server)
    promtool_check(text)
    assert sample(text, "fwknopd_up") == 1
    assert sample(text, "fwknopd_refusals_total", reason="hmac") == 6  # the wrong key, the junk
    assert sample(text, "fwknopd_refusals_total", reason="replay") == 0  # every reason is there
    grants = sample(text, "fwknopd_grants_total", stanza="1", backend="nftables", origin="local")
    assert grants == 1
    assert sample(text, "fwknopd_active_grants") == 1
    assert sample(text, "fwknopd_packet_to_rule_seconds_count") == 1
    assert 0 < sample(text, "fwknopd_packet_to_rule_seconds_sum") < 5
    assert sample(text, "fwknopd_replay_cache_entries", store="sqlite") == 2  # the knock's two
    assert "fwknopd_redis_up" not in text  # no Redis here
    # the same figures for scripts, from the status socket (0600 in the run directory)
    sock = tmp_path / "d" / "run" / "fwknopd.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    res = pair.server.run(daemon.command("--status", "--json"), check=False)
    assert res.returncode == 0, res.stderr.decode()
    status = json.loads(res.stdout)
    assert status["running"] and status["answering"] and status["firewall"] == "nftables"
    assert status["refusals"]["hmac"] == 6 and status["grants"]["active"] == 1
    assert status["grants"]["made"] == [
        {"stanza": 1, "origin": "local", "backend": "nftables", "count": 1}
    ]
    daemon.stop()
    assert not sock.exists()
    res = pair.server.run(daemon.command("--status", "--json"), check=False)
    assert res.returncode == 1 and json.loads(res.stdout) == {"running": False}


@pytest.mark.usefixtures("namespaces")
@pytest.mark.netns
def test_no_metrics_endpoint_unless_asked(pair: NetPair, tmp_path: Path) -> None:
    daemon = _daemon(pair, tmp_path)
    listening = pair.server.run(["ss", "-Htln"], check=False).stdout.decode()
    assert ":9822" not in listening and "metrics at" not in daemon.log()


def test_metrics_listen_is_loopback_unless_an_address_is_given() -> None:
    assert listen_address("9822") == ("127.0.0.1", 9822)
    assert listen_address("[::1]:9822") == ("::1", 9822)
    assert listen_address("198.18.0.1:9100") == ("198.18.0.1", 9100)
    for bad in ("localhost:9822", "0", "1.2.3.4:70000", "x"):
        with pytest.raises(ValueError, match=r"ADDRESS:PORT|IP address"):
            listen_address(bad)


def test_a_bad_metrics_address_names_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text("PCAP_INTF lo\nMETRICS_LISTEN localhost:9822\n")
    with pytest.raises(ConfigError, match=f"{conf}:2: METRICS_LISTEN"):
        load_server_config(conf)


def test_a_sync_group_needs_a_redis_url(tmp_path: Path) -> None:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text("GRANT_SYNC_GROUP ha1\n")
    with pytest.raises(ConfigError, match=f"{conf}:1: GRANT_SYNC_GROUP needs"):
        load_server_config(conf)


def test_a_password_in_the_url_is_never_shown(tmp_path: Path) -> None:
    assert redact_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("rediss://fw:s3cret@h/1?x=y") == "rediss://fw:***@h/1?x=y"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    conf = tmp_path / "fwknopd.conf"
    conf.write_text("REPLAY_CACHE_URL redis://:s3cret@127.0.0.1:6379/0\n")
    access = tmp_path / "access.conf"
    access.write_text(f"SOURCE ANY\n{stanza_keys(KEYS)}")
    res = subprocess.run(
        [FWKNOPD, "-c", str(conf), "-a", str(access), "-D"],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    out = res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 0, out
    assert "redis://:***@127.0.0.1:6379/0" in out and "s3cret" not in out
