"""atheris fuzz target: a profiles.toml raises only ConfigFileError / UnknownProfileError.

    python tests/fuzz/fuzz_profiles.py [libFuzzer options, e.g. -runs=100000 corpus/]

The first byte picks the shape of the input: raw bytes as the file (the TOML
parser, UTF-8, top-level keys), or one ``[profiles.NAME]`` table built from
the rest with a FuzzedDataProvider: real field names (and some unknown ones)
with values of every TOML type, strings with any characters (NUL, controls,
surrogates escaped), so the field validators and the cross-field rules are
reached. Every read the CLI and the TUI make runs on it: names, load, every
``get``, ``problems``. Anything but the documented errors escaping is a crash.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tomllib
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from fwknop_tui.errors import ConfigFileError, UnknownProfileError
    from fwknop_tui.wallet import profiles as profiles_module
    from fwknop_tui.wallet.profiles import FIELDS, ProfileStore

# the file's text comes from memory and is parsed every time (the cache has its own tests)
profiles_module.parsed_toml = lambda _path, text: tomllib.loads(text)  # type: ignore[assignment]
CURRENT = [""]


class _Store(ProfileStore):
    def _text(self) -> str:
        return CURRENT[0]


STORE = _Store(Path("fuzz/profiles.toml"))
NAMES = [*FIELDS, "hostt", "profiles", ""]
NAME_CHARS = "abcXYZ019._- \"'\\[]=\n\0é"


def _string(fdp: atheris.FuzzedDataProvider) -> str:
    return json.dumps(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40)))


def _value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> str:
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind == 0:
        return _string(fdp)
    if kind == 1:
        return str(fdp.ConsumeIntInRange(-(2**70), 2**70))
    if kind == 2:
        return repr(fdp.ConsumeRegularFloat())
    if kind == 3:
        return fdp.PickValueInList(["true", "false", "nan", "inf", "-inf", "1979-05-27"])
    if kind == 4 and depth < 3:
        return (
            "["
            + ", ".join(_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3)))
            + "]"
        )
    if kind == 5 and depth < 3:
        return "{ a = " + _value(fdp, depth + 1) + " }"
    return _string(fdp)


def _profile(fdp: atheris.FuzzedDataProvider) -> str:
    name = "".join(
        fdp.PickValueInList(list(NAME_CHARS)) for _ in range(fdp.ConsumeIntInRange(0, 8))
    )
    lines = [f"[profiles.{json.dumps(name)}]"]
    if fdp.ConsumeBool():
        lines.append('host = "198.18.0.1"')
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        key = fdp.PickValueInList(NAMES)
        lines.append(f"{json.dumps(key)} = {_value(fdp)}")
    return "\n".join(lines) + "\n"


def test_one_input(data: bytes) -> None:
    """Read the input as profiles.toml every way the client does; only documented errors."""
    if not data:
        return
    if data[0] & 1:
        try:  # as _text reads it: UTF-8 or a ConfigFileError
            CURRENT[0] = data[1:].decode("utf-8")
        except UnicodeDecodeError:
            return
    else:
        CURRENT[0] = _profile(atheris.FuzzedDataProvider(data[1:]))
    try:
        names = STORE.names()
    except ConfigFileError:
        return
    STORE.load()
    STORE.problems()
    for name in names:
        with contextlib.suppress(ConfigFileError, UnknownProfileError):
            STORE.get(name)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
