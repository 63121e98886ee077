"""Test-wide rules.

In CI (``CI`` set) an end-to-end test that skips is a failure: a missing
fwknop binary, namespace support, keyring, gpg or redis-server must break the run rather
than quietly shrink it. Locally such tests skip with the reason.

Hypothesis runs without its per-example deadline (200 ms) and its "too
slow" health check: both time the machine, and the suite must hold on a
loaded one (tests assert behaviour; speed lives in tests/bench).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers.cfwknopd import real_fwknop_missing
from tests.helpers.netns import unavailable_reason
from tests.helpers.secret_service import SecretServiceSession, secret_service
from tests.helpers.secret_service import unavailable_reason as no_secret_service

settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

END_TO_END_MARKERS = ("interop", "netns", "keyring", "gpg", "redis")
IN_CI = bool(os.environ.get("CI"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Turn a skipped end-to-end test into a failure when running in CI."""
    outcome = yield
    report = outcome.get_result()
    if not IN_CI or not report.skipped or hasattr(report, "wasxfail"):
        return
    markers = [m for m in END_TO_END_MARKERS if item.get_closest_marker(m)]
    if markers:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"end-to-end test ({', '.join(markers)}) skipped in CI: {reason}"


@pytest.fixture(scope="session")
def real_fwknop() -> None:
    """Skip (fail in CI) unless /usr/bin/fwknop and /usr/sbin/fwknopd are installed."""
    if reason := real_fwknop_missing():
        pytest.skip(reason)


@pytest.fixture(scope="session")
def namespaces() -> None:
    """Skip (fail in CI) unless we can create network namespaces."""
    if reason := unavailable_reason():
        pytest.skip(reason)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[SecretServiceSession]:
    """A private, unlocked Secret Service (skips, and fails in CI, where it cannot start)."""
    if reason := no_secret_service():
        pytest.skip(reason)
    with secret_service(tmp_path / "ss") as started:
        yield started


@pytest.fixture(autouse=True)
def _no_stale_root_handlers() -> Iterator[None]:
    """The root logger as the test found it, less the handlers an in-process main() added.

    ``fwknopd -f`` run in-process (``cli.main``) puts a handler on the test's
    captured stderr, closed once the test ends; a later test's log record
    would then print "--- Logging error ---" with its traceback into that
    test's stderr. Pytest's own capture handlers (subclasses) are left alone.
    """
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before and type(handler) in (
            logging.StreamHandler,
            logging.handlers.SysLogHandler,
        ):
            root.removeHandler(handler)
            handler.close()  # a syslog socket; a StreamHandler leaves its stream open
    root.setLevel(level)
