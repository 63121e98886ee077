"""atheris fuzz target: fwknopd.conf and access.conf raise only ConfigError, and never show a key.

    python tests/fuzz/fuzz_config.py [libFuzzer options, e.g. -runs=100000 corpus/]

Each input is a pair of files, fwknopd.conf and access.conf, loaded as the
daemon loads them (``settings.load``: every key's kind and range, the
stanzas, each part's typed settings), then shown as ``-D`` shows them. The
first byte picks how each file is made: raw bytes (any encoding, any line),
or lines of real names (and a few near misses) with values the fuzzer
chooses: good ones, numbers, addresses, lists, bytes that are not UTF-8,
NULs, names glued to their values. Anything but ``ConfigError`` escaping is
a crash; so is a problem, a warning or a ``-D`` line that holds the value of
a secret-bearing setting (a key, a passphrase) of eight characters or more.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from fwknop_server.access import KNOWN_NAMES
    from fwknop_server.cli import dump_settings
    from fwknop_server.config import KEYS
    from fwknop_server.confsyntax import SECRET_NAMES
    from fwknop_server.errors import ConfigError
    from fwknop_server.settings import Options, load

_DIR = Path(
    tempfile.mkdtemp(prefix="fuzz-config-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
)
CONF, ACCESS, KEYS_FILE = _DIR / "fwknopd.conf", _DIR / "access.conf", _DIR / "keys.conf"
(_DIR / "gnupg").mkdir()
OPTIONS = Options(config_file=CONF, access_paths=(ACCESS,))
SERVER_NAMES = [*sorted(KEYS), "FOO", "PCAP_INTF:", "%include"]
ACCESS_NAMES = [*sorted(KNOWN_NAMES), *["SOURCE"] * 4, "FOO", "%include_keys", "%include"]
VALUES = [
    "ANY", "Y", "N", "0", "1", "30", "8388608", "99999999999", "-1", "²", "198.18.0.0/24",
    "1.2.3.4/40", "::/0", "tcp/22, udp/53", "tcp/99999",
    "kHojL8HJ6vJ9tTBlXMDBjoC7E5GcRYXBUBKG9BW7m9Y=",
    "__CHANGEME__", "sha512", "md5", "CTR", "legacy", "Asymmetric", "root", "nobody", "nogroup",
    "01/01/2030", "13/45/2030", "192.168.1.2 22", "192.168.1.2", "/bin/true $IP $PORT", "NONE",
    f"{_DIR}/gnupg", "/nonexistent", "$FWKNOP_RUN_DIR/x", "$NOPE", "$FWKNOP_CONF_DIR",
    "ACCEPT, filter, INPUT, 1, FWKNOP_INPUT, 1", "a, b", "nftables", "log", "inet filter",
    "sqlite:///tmp/x.db", "redis://x", str(KEYS_FILE), str(_DIR), "/dev/zero",
]  # fmt: skip
SEPARATORS = [" ", "\t", ": ", ":", "  ", "=", ""]


def _line(fdp: atheris.FuzzedDataProvider, names: list[str]) -> str:
    name = fdp.PickValueInList(names)
    if fdp.ConsumeIntInRange(0, 2):
        value = fdp.PickValueInList(VALUES)
    else:
        value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)).decode("utf-8", "surrogateescape")
    tail = fdp.PickValueInList(["", ";", "; x", " # y", "\r"])
    return f"{name}{fdp.PickValueInList(SEPARATORS)}{value}{tail}"


def _text(fdp: atheris.FuzzedDataProvider, names: list[str], raw: bool) -> bytes:
    if raw:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 600))
    lines = [_line(fdp, names) for _ in range(fdp.ConsumeIntInRange(0, 14))]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def _values(*texts: bytes) -> tuple[set[str], list[str]]:
    """The values of secret-bearing settings in ``texts`` (8 characters or more), and the others."""
    secret, other = set(), []
    for text in texts:
        for raw in text.decode("utf-8", "surrogateescape").splitlines():
            line = raw.strip()
            name = next((n for n in SECRET_NAMES if line.upper().startswith(n)), "")
            value = line[len(name) :].lstrip(": \t=").split(";", 1)[0].strip()
            if name and len(value) >= 8 and value != "__CHANGEME__":
                secret.add(value)
            elif not name:
                other.append(line)
    return secret, other


def _secrets(*texts: bytes) -> set[str]:
    """The secret values that no other line holds (a message may quote those lines)."""
    secret, other = _values(*texts)
    other += [str(CONF), str(ACCESS), str(KEYS_FILE)]  # every message names its file
    return {s for s in secret if not any(s in line for line in other)}


def _shown(secrets: set[str], texts: list[str]) -> list[tuple[str, str]]:
    return [(secret, text) for text in texts for secret in secrets if secret in text]


def _check_secrets(secrets: set[str], texts: list[str], files: list[bytes]) -> None:
    """No secret in ``texts``, unless the words come from elsewhere (e.g. a list of choices).

    On a hit the files are loaded again with that secret's value spelt
    otherwise on its secret-bearing lines only: if the message still holds it,
    the program said those words of its own ("... or Asymmetric").
    """
    for secret, text in _shown(secrets, texts):
        if secret in _messages(_respelt(files, secret)):
            continue
        raise AssertionError(f"a secret is shown: {text!r}")


def _respelt(files: list[bytes], secret: str) -> list[bytes]:
    """``files`` with ``secret`` spelt otherwise in the values (not the names) of secret lines."""
    other = "Z" * len(secret)
    out = []
    for text in files:
        lines = text.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        for i, line in enumerate(lines):
            stripped = line.lstrip()
            name = next((n for n in SECRET_NAMES if stripped.upper().startswith(n)), "")
            if name:
                cut = len(line) - len(stripped) + len(name)
                lines[i] = line[:cut] + line[cut:].replace(secret, other)
        out.append("".join(lines).encode("utf-8", "surrogateescape"))
    return out


def _load(files: list[bytes]) -> list[str]:
    """Write the three files, load them and show them as -D does: every message and line."""
    for path, text in zip((CONF, ACCESS, KEYS_FILE), files, strict=True):
        path.write_bytes(text)
    warnings: list[str] = []
    try:
        settings = load(OPTIONS, warnings)
    except ConfigError as exc:
        return [str(p) for p in exc.problems] + warnings
    shown = [dump_settings(settings), *map(repr, settings.stanzas)]  # what -D prints, reprs
    return [*warnings, *shown]


def _messages(files: list[bytes]) -> str:
    return "\n".join(_load(files))


def test_one_input(data: bytes) -> None:
    """Load one pair of files; only ConfigError may escape, and no secret may be shown."""
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    conf = _text(fdp, SERVER_NAMES, bool(data[0] & 1))
    access = _text(fdp, ACCESS_NAMES, bool(data[0] & 2))
    keys = _text(fdp, ACCESS_NAMES, bool(data[0] & 4))
    files = [conf, access, keys]
    _check_secrets(_secrets(access, keys, conf), _load(files), files)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
