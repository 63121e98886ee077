"""A hostile or broken profiles.toml gives a ConfigFileError with file:line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_tui.cli import main
from fwknop_tui.errors import ConfigFileError, ExitCode
from fwknop_tui.wallet.profiles import ProfileStore
from fwknop_tui.wallet.secrets import MemoryStore


def _store(tmp_path: Path, text: str) -> ProfileStore:
    path = tmp_path / "profiles.toml"
    path.write_text(text)
    return ProfileStore(path)


@pytest.mark.parametrize(
    "text",
    [
        "[profiles.x]\nhost = " + "[" * 5000 + "]" * 5000 + "\n",
        "[profiles.x]\nhost = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
    ],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    store = _store(tmp_path, text)
    with pytest.raises(ConfigFileError, match="nested too deeply"):
        store.get("x")
    (problem,) = store.problems()
    assert "nested too deeply" in str(problem) and str(store.path) in str(problem)


def test_a_nul_in_a_host_names_the_file_line_and_key(tmp_path: Path) -> None:
    store = _store(tmp_path, '[profiles.x]\ndescription = "ok"\nhost = "fw\\u0000.example.org"\n')
    with pytest.raises(ConfigFileError) as err:
        store.get("x")
    assert str(err.value).startswith(f"{store.path}:3: profiles.x.host: ")
    assert "is not a host name or an IP address" in str(err.value)


def test_set_with_a_deeply_nested_value_is_refused_not_a_traceback(
    memory: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", "x", "-D", "198.18.0.1"], secrets=memory) == 0
    code = main(["edit", "x", "--set", "access=" + "[" * 3000 + "]" * 3000], secrets=memory)
    assert code == ExitCode.USAGE
    assert "access" in capsys.readouterr().err
