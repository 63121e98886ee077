"""How the daemon's parts are found: firewall backends by name and detection, replay stores by
scheme, capture sources by settings; and what a reload may change (config.KEYS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fwknop_server.capture import SOURCES, CaptureSettings
from fwknop_server.config import FIREWALL_TYPES, KEYS, Reload, ServerConfig, load_server_config
from fwknop_server.errors import ConfigError
from fwknop_server.firewall import BACKENDS, DETECT, FirewallError, detect, make_firewall
from fwknop_server.firewall.runner import Tools
from fwknop_server.replay import STORES, ReplaySettings, open_store

from tests.helpers.recorder import Recorder


def _config(tmp_path: Path, text: str = "") -> ServerConfig:
    path = tmp_path / "fwknopd.conf"
    path.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\n{text}")
    return load_server_config(path)


def _ruleset(chain: str) -> dict[str, Any]:
    chain_object = {"family": "inet", "table": "filter", "name": chain, "hook": "input",
                    "type": "filter", "policy": "drop"}  # fmt: skip
    return {"nftables": [{"chain": chain_object}]}


def test_every_firewall_type_fwknopd_conf_takes_has_a_backend() -> None:
    assert tuple(BACKENDS) == FIREWALL_TYPES
    assert set(DETECT) <= set(BACKENDS)
    assert all(BACKENDS[name].name == name for name in BACKENDS)


def test_detection_tries_each_backend_in_order(tmp_path: Path) -> None:
    config = _config(tmp_path)
    native = Tools(Recorder(), lambda _doc: _ruleset("input"))
    assert detect(config, native) == "nftables"
    ipt = Recorder()
    iptables_nft = Tools(ipt, lambda _doc: _ruleset("INPUT"))  # iptables-nft's own chain
    assert detect(config, iptables_nft) == "iptables"
    assert ipt.calls == [["/usr/sbin/iptables", "-w", "-S", "INPUT"]]
    with pytest.raises(FirewallError) as none:
        detect(config, Tools(Recorder(fail=["-S"]), lambda _doc: {"nftables": []}))
    assert "nftables: cannot tell which" in str(none.value) and "iptables: no" in str(none.value)
    log_only = make_firewall(_config(tmp_path, "FIREWALL_TYPE log\n"), run=Recorder())
    assert log_only.name == "log"


# nat_settings reads these beside the NAT switches; the backends only ask whether NAT is on
_READ_WITH_THE_NAT_SWITCHES = {"SNAT_TRANSLATE_IP", "ENABLE_NAT_DNS"}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_backend_reads_only_keys_a_restart_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # every branch: NAT on, IPv6 on, a backend's own table and chain
    config = _config(tmp_path, "ENABLE_IPT_FORWARDING Y\nENABLE_IP6TABLES Y\n"
                               "NFT_TABLE inet filter\nNFT_CHAIN input\n"
                               "ENABLE_IPT_OUTPUT Y\nENABLE_FIREWD_OUTPUT Y\n"
                               "ENABLE_NFQ_CAPTURE Y\nNFQ_INTERFACE eth1\n")  # fmt: skip
    read: set[str] = set()
    real = ServerConfig._of

    def recording(self: ServerConfig, key: str, kind: Any) -> str | None:
        read.add(key)
        return real(self, key, kind)

    monkeypatch.setattr(ServerConfig, "_of", recording)
    BACKENDS[name].from_config(config, Tools(Recorder(), lambda _doc: _ruleset("input")))
    live = {key for key in read if KEYS[key].reload is not Reload.RESTART}
    assert live <= _READ_WITH_THE_NAT_SWITCHES, live


def test_keys_say_what_a_reload_does_with_them(tmp_path: Path) -> None:
    old = _config(tmp_path)
    new = _config(tmp_path, "PCAP_INTF eth9\nFLUSH_IPT_AT_EXIT N\nMAX_SPA_PACKET_AGE 30\n")
    assert old.changed(new, Reload.CAPTURE) == ["PCAP_INTF"]
    # FLUSH_NFT_AT_EXIT follows FLUSH_IPT_AT_EXIT ($FLUSH_IPT_AT_EXIT): both were read at start
    assert old.changed(new, Reload.RESTART) == ["FLUSH_IPT_AT_EXIT", "FLUSH_NFT_AT_EXIT"]
    assert old.changed(new, Reload.LIVE) == ["MAX_SPA_PACKET_AGE"]
    with pytest.raises(TypeError, match="MAX_SPA_PACKET_AGE is a number setting, not a flag"):
        old.flag("MAX_SPA_PACKET_AGE")
    # every key a capture source is opened with reopens capture when it changes
    capture = CaptureSettings.from_config(new)
    assert capture.interface == "eth9"
    assert [name for name, _w, _m in SOURCES] == ["nfqueue", "udp", "sniff"]


def test_the_replay_store_is_chosen_by_its_url(tmp_path: Path) -> None:
    default = ReplaySettings.from_config(_config(tmp_path))
    assert default.scheme == "sqlite" and default.path == tmp_path / "run" / "replay.sqlite"
    elsewhere = tmp_path / "elsewhere.sqlite"
    chosen = ReplaySettings.from_config(
        _config(tmp_path, f"REPLAY_CACHE_URL sqlite://{elsewhere}\n")
    )
    store = open_store(chosen)
    assert store is not None and len(store) == 0
    store.close()
    assert elsewhere.exists()
    assert (
        open_store(ReplaySettings.from_config(_config(tmp_path, "ENABLE_DIGEST_PERSISTENCE N\n")))
        is None
    )
    with pytest.raises(ConfigError) as unknown:
        ReplaySettings.from_config(_config(tmp_path, "REPLAY_CACHE_URL memcached://x\n"))
    assert str(unknown.value) == (
        f"{tmp_path / 'fwknopd.conf'}:2: REPLAY_CACHE_URL: no replay store for 'memcached' "
        f"(this fwknopd has: {', '.join(STORES)})"
    )
