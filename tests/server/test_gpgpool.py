"""GnuPG decryption runs in a bounded worker pool: a flood of GnuPG-sized junk for a stanza
without an HMAC key fills the queue and is refused past it, counted, while Rijndael knocks are
granted as they come (issue 11, item 4). No timing: the decryptions are held until released."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from pathlib import Path

import pytest
from fwknop_server.daemon import Daemon, Options, load
from fwknop_server.firewall.logonly import LogOnly
from fwknop_server.gpgpool import QUEUE, WORKERS, GpgPool, settle
from fwknop_server.vocab import Deferred, GpgJob, GpgOutcome, Packet, Reason, Refused

from fwknop_core import HmacKey, InvalidPacket, RejectReason, RijndaelKey, SpaMessage, build_packet

KEY, HKEY = RijndaelKey(b"k" * 32), HmacKey(b"h" * 64)
NOW = 1_795_268_000
SRC = ipaddress.ip_address("198.18.0.2")
GPG_JUNK = Packet(b"8" + b"Q" * 700, SRC, None, 17, 40000, 62201)


class HeldGpg:
    """A GnuPG that decrypts nothing, and only once released; it says when a worker is in it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.calls = 0

    def __call__(self, job: GpgJob) -> GpgOutcome:
        self.calls += 1
        self.entered.release()
        assert self.release.wait(30), "never released"
        return InvalidPacket(RejectReason.DECRYPT_FAILED, "held")


def _daemon(tmp_path: Path) -> Daemon:
    conf = tmp_path / "fwknopd.conf"
    conf.write_text(f"FWKNOP_RUN_DIR {tmp_path}/run\nFIREWALL_TYPE log\n")
    access = tmp_path / "access.conf"
    access.write_text(  # a GnuPG stanza without an HMAC key: every GnuPG-sized packet is decrypted
        f"SOURCE ANY\nGPG_HOME_DIR {tmp_path}\nGPG_ALLOW_NO_PW Y\nGPG_DISABLE_SIG Y\n\n"
        f"SOURCE ANY\nKEY_BASE64 {KEY.to_base64()}\nHMAC_KEY_BASE64 {HKEY.to_base64()}\n"
    )
    options = Options(config_file=conf, access_paths=(access,))
    firewall = LogOnly(flush_at_init=False, flush_at_exit=False)
    return Daemon(options, load(options), firewall=firewall, clock=lambda: NOW)


def _knock(port: int) -> Packet:
    msg = SpaMessage.access_request("198.18.0.2", f"tcp/{port}", username="u", now=NOW)
    return Packet(build_packet(msg, KEY, hmac_key=HKEY).encode(), SRC, None, 17, 40000, 62201)


def test_gnupg_junk_past_the_queue_is_refused_while_rijndael_knocks_are_granted(
    tmp_path: Path,
) -> None:
    daemon = _daemon(tmp_path)
    held = HeldGpg()
    daemon.gpg = daemon.dispatch.gpg = GpgPool(decrypt=held)
    overflow = 10

    async def run() -> None:
        daemon.bind(asyncio.get_running_loop())
        dispatch = daemon.dispatch
        dispatch.handle_all([GPG_JUNK] * WORKERS, NOW)  # each worker takes one and is held
        for _ in range(WORKERS):
            assert await asyncio.to_thread(held.entered.acquire, True, 30)
        dispatch.handle_all([GPG_JUNK] * (QUEUE + overflow) + [_knock(22)], NOW)
        # the event loop was never held up: the knock is granted while every worker is busy
        assert (SRC, "tcp", 22) in daemon.firewall.open
        assert daemon.refusals.counts["gpg_busy"] == overflow
        assert "decrypt" not in daemon.refusals.counts
        dispatch.handle_all([_knock(23)], NOW)
        assert (SRC, "tcp", 23) in daemon.firewall.open
        held.release.set()
        await daemon.gpg.drained()  # every decryption that was taken comes back, and is decided
        daemon.gpg.shutdown()

    asyncio.run(run())
    assert held.calls == WORKERS + QUEUE
    assert daemon.refusals.counts == {
        "granted": 2, "gpg_busy": overflow, "decrypt": WORKERS + QUEUE
    }  # fmt: skip


def test_the_pipeline_hands_gnupg_over_and_resumes_with_its_outcome(tmp_path: Path) -> None:
    processor = _daemon(tmp_path).processor
    decision = processor.process(GPG_JUNK, NOW)
    assert isinstance(decision, Deferred)
    assert decision.job.data == GPG_JUNK.payload and decision.job.home_dir == str(tmp_path)
    failed = InvalidPacket(RejectReason.DECRYPT_FAILED, "bad")
    refused = decision.resume(failed)
    assert isinstance(refused, Refused) and refused.reason is Reason.DECRYPT_FAILED
    with pytest.raises(RuntimeError, match="resumed twice"):
        decision.resume(failed)
    # settle runs the jobs in the caller's thread (tests and tools without an event loop)
    assert settle(processor.process(GPG_JUNK, NOW), lambda _job: failed) == refused


@pytest.mark.parametrize("size", [400, 700, 1499])
def test_rijndael_sized_junk_never_reaches_gnupg(tmp_path: Path, size: int) -> None:
    processor = _daemon(tmp_path).processor
    rijndael_sized = processor.process(Packet(b"8" + b"Q" * 203, SRC), NOW)
    assert isinstance(rijndael_sized, Refused) and rijndael_sized.reason is Reason.HMAC_MISMATCH
    gpg_sized = processor.process(Packet(b"8" + b"Q" * (size - 1), SRC), NOW)
    assert isinstance(gpg_sized, Deferred)
