"""One knock from the TUI: the send pipeline, the demo server's verdict, history, advice.

``run_knock`` is what a knock worker thread calls. It runs ``send.knock``
(so the TUI shares every stage with ``fwknop send``), reports each stage as
it finishes, adds a ``server`` stage when the profile is the running demo's
(its fwknopd says whether it accepted the packet), records the knock in the
history and returns a ``KnockOutcome``. Failures a user can act on come back
as an outcome with the stage that failed, the reason and what to try; only
a bug escapes as an exception (the app's worker handler reports it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import (
    ClientError,
    ClientUsageError,
    KeyMissingError,
    KeyringLockedError,
    NoKeyringError,
    ResolveError,
    SendError,
)
from ..history import KnockHistory, KnockRecord, StageRecord

if TYPE_CHECKING:
    from ..demo import DemoServer
    from ..send import KnockResult, StageReport
    from ..wallet import Wallet
    from ..wallet.profiles import Profile

__all__ = ["KnockOutcome", "advice", "expected_stages", "run_knock"]

SERVER_STAGE = "server"


@dataclass(frozen=True)
class KnockOutcome:
    """How a knock ended: the history record, the result (if the packet was built), advice."""

    record: KnockRecord
    result: KnockResult | None = None
    error: str = ""
    advice: str = ""

    @property
    def ok(self) -> bool:
        """Whether the knock did everything it set out to do."""
        return self.record.ok

    @property
    def headline(self) -> str:
        """One line for the knock view."""
        v = self.result.verify if self.result is not None else None
        if self.ok and v is not None and v.open_before:
            took = f"{self.record.seconds * 1000:.0f} ms"
            return (
                f"Sent in {took}, but {v.host}:{v.port} was already open before the knock: "
                "the verify proves nothing."
            )
        if self.ok or not self.error:
            return self.record.headline
        return f"Failed at {self.record.failed_stage}: {self.error}"


def expected_stages(profile: Profile, *, demo: bool) -> tuple[str, ...]:
    """The stages a knock of ``profile`` will go through."""
    stages = ["keys", "resolve", "build", "send"]
    if profile.verify:
        stages.append("verify")
    if demo:
        stages.append(SERVER_STAGE)
    return tuple(stages)


def advice(exc: BaseException | None, outcome: KnockRecord, profile: Profile) -> str:
    """What to try after a failed knock."""
    if isinstance(exc, KeyringLockedError):
        return "unlock the keyring (it may be waiting for its password), then knock again."
    if isinstance(exc, NoKeyringError):
        return (
            "start a Secret Service (GNOME Keyring, KeePassXC), or give the profile a key "
            "command or key file (e, Crypto tab)."
        )
    if isinstance(exc, KeyMissingError):
        return "store the keys: edit the profile (e) and paste them, or generate new ones (g)."
    if isinstance(exc, ResolveError):
        return "check the host name and the network (DNS); with allow IP 'resolve', the URL."
    if isinstance(exc, SendError):
        return "check the destination and port; icmp and udpraw need root (CAP_NET_RAW)."
    if isinstance(exc, ClientUsageError):
        return "edit the profile (e): one of its fields cannot be used as it is."
    return STAGE_ADVICE.get(outcome.failed_stage or "", "see the log below.").format(
        verify=profile.verify or "the port"
    )


# what to try when all we know is the stage that failed (a knock from the history)
STAGE_ADVICE = {
    "keys": "store the keys (e, Crypto tab; or g for new ones), or unlock the keyring.",
    "resolve": "check the host name and the network (DNS); with allow IP 'resolve', the URL.",
    "build": "edit the profile (e): the keys or a field do not fit this profile.",
    "send": "check the destination and port; icmp and udpraw need root (CAP_NET_RAW).",
    "verify": (
        "the packet went out but {verify} never answered: is fwknopd running there with this "
        "profile's keys (t shows its access.conf stanza), and can the packet reach it?"
    ),
    SERVER_STAGE: "the demo fwknopd did not accept the packet: its log lines above say why.",
}


def run_knock(
    profile: Profile,
    wallet: Wallet,
    history: KnockHistory,
    *,
    on_stage: Callable[[StageRecord], object],
    on_progress: Callable[[int, int], object] | None = None,
    demo: DemoServer | None = None,
    allow_ip: str | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> KnockOutcome:
    """Knock with ``profile``, reporting stages and a sequence's knocks as they go out;
    records the outcome in ``history``."""
    from ..send import knock  # noqa: PLC0415 - the packet machinery loads with the first knock

    reports: list[StageReport] = []

    def stage_done(report: StageReport) -> None:
        reports.append(report)
        on_stage(StageRecord.of(report))

    when = clock()
    mark = demo.mark if demo is not None else 0
    try:
        result = knock(
            profile,
            wallet.keys,
            ask_allow_ip=(lambda: allow_ip) if allow_ip is not None else None,
            on_stage=stage_done,
            cancel=cancel,
            on_progress=on_progress,
        )
    except ClientError as exc:
        record = KnockRecord.of_failure(profile.name, when, reports, str(exc))
        history.append(record)
        return KnockOutcome(record, error=str(exc), advice=advice(exc, record, profile))
    record = KnockRecord.of_result(result, when)
    if demo is not None and result.sent:
        start = time.perf_counter()
        decision = demo.wait_for_decision(mark)
        took = time.perf_counter() - start
        if decision is None:
            stage = StageRecord(SERVER_STAGE, False, took, "the demo fwknopd said nothing")
        else:
            stage = StageRecord(SERVER_STAGE, decision.accepted, took, decision.text)
        on_stage(stage)
        record = replace(
            record,
            ok=record.ok and stage.ok,
            seconds=record.seconds + took,
            summary=f"{record.summary}; fwknopd {stage.detail}",
            stages=(*record.stages, stage),
        )
    history.append(record)
    if record.ok:
        return KnockOutcome(record, result)
    error = next((s.detail for s in record.stages if not s.ok), record.summary)
    return KnockOutcome(record, result, error=error, advice=advice(None, record, profile))
