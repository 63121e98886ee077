"""``--pcap-file``: as fwknopd, the daemon reads the file, then keeps running and closes what
it opened on time; ``--exit-after-pcap-file`` exits once the file is read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fwknop_server import cli
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall.logonly import LogOnly

from fwknop_core import HmacKey, RijndaelKey, SpaMessage, build_packet
from tests.helpers.pcapfile import write_udp_pcap
from tests.helpers.wait import DEADLINE, wait_for_async

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
CLIENT, SERVER = "198.18.0.2", "198.18.0.1"


def _daemon(tmp_path: Path, *, exit_after_file: bool) -> Daemon:
    capture = tmp_path / "spa.pcap"
    message = SpaMessage.access_request(CLIENT, "tcp/22", username="u", now=1000)
    write_udp_pcap(capture, [build_packet(message, KEY, hmac_key=HKEY).encode()], CLIENT, SERVER)
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\nPCAP_FILE {capture}\n")
    access = tmp_path / "access.conf"
    access.write_text(
        f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
        "FW_ACCESS_TIMEOUT 2\n"
    )
    options = Options(config_file=conf, access_paths=(access,), exit_after_file=exit_after_file)
    return Daemon(
        options, load(options), firewall=LogOnly(flush_at_init=False, flush_at_exit=False)
    )


async def test_the_daemon_keeps_running_after_the_file_and_expires_its_grants(
    tmp_path: Path,
) -> None:
    daemon = _daemon(tmp_path, exit_after_file=False)
    run = asyncio.create_task(daemon.run())
    try:
        assert await wait_for_async(lambda: bool(daemon.firewall.open))  # the grant
        assert await wait_for_async(lambda: not daemon.firewall.open)  # its expiry, on time
        assert not run.done()  # still serving, as fwknopd
    finally:
        daemon.stop()
        assert await asyncio.wait_for(run, DEADLINE) == 0


async def test_exit_after_the_file_when_asked(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, exit_after_file=True)
    assert await asyncio.wait_for(daemon.run(), DEADLINE) == 0
    assert daemon.refusals.counts == {"granted": 1}


@pytest.mark.parametrize("flag", [[], ["--exit-after-pcap-file"]])
def test_the_option_reaches_the_daemon(flag: list[str]) -> None:
    args = cli._parser().parse_args(["--pcap-file", "x.pcap", *flag])
    assert cli._options(args).exit_after_file is bool(flag)
