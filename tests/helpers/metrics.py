"""Reading a daemon's metrics endpoint in its namespace, and checking it with the real promtool."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .netns import Netns

PROMTOOL = "/usr/bin/promtool"
_FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"


def scrape(ns: Netns, url: str = "http://127.0.0.1:9822/metrics") -> str:
    """The exposition at ``url``, fetched from inside ``ns``."""
    res = ns.run([sys.executable, "-c", _FETCH, url], check=False)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


def sample(text: str, name: str, **labels: str) -> float:
    """A sample's value in ``text`` (``labels``: all of the sample's labels, in any order)."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if (
            m
            and m.group(1) == name
            and dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")) == labels
        ):
            return float(m.group(3))
    raise AssertionError(f"no {name}{labels} in the exposition")


def promtool_check(text: str) -> None:
    """``promtool check metrics`` passes ``text`` (skips, and fails in CI, without promtool)."""
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool is not installed (Debian package prometheus)")
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                         check=False, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
