"""The QR codes decode, with a real decoder (zbarimg), to exactly the share text."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fwknop_core import encode_share, parse_share
from fwknop_tui import qr
from fwknop_tui.cli import main
from fwknop_tui.errors import ExitCode
from fwknop_tui.wallet.secrets import MemoryStore

ZBARIMG = shutil.which("zbarimg")


def _decode(image: Path) -> str:
    if ZBARIMG is None:
        pytest.fail("zbarimg is not installed (apt-get install zbar-tools)")
    res = subprocess.run(
        [ZBARIMG, "--raw", "-q", str(image)], capture_output=True, timeout=60, check=False
    )
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode().removesuffix("\n")


def _matrix_from_terminal(text: str) -> list[list[bool]]:
    """Undo render_terminal: two module rows per line, light modules drawn."""
    light = {
        " ": (False, False),
        "\u2588": (True, True),
        "\u2580": (True, False),
        "\u2584": (False, True),
    }
    rows: list[list[bool]] = []
    for line in text.splitlines():
        pairs = [light[c] for c in line]
        rows.append([not t for t, _ in pairs])
        rows.append([not b for _, b in pairs])
    return rows[: len(rows[0])]  # the last line may carry a padding row


def _png_from_matrix(matrix: list[list[bool]], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qr, "qr_matrix", lambda _text, **_kw: matrix)
    path.write_bytes(qr.png_bytes("", scale=6))


@pytest.fixture
def profile_with_keys(memory: MemoryStore, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["add", "phone", "-D", "spa.example.org"], secrets=memory) == ExitCode.OK
    assert main(["keygen", "--profile", "phone"], secrets=memory) == ExitCode.OK
    capsys.readouterr()
    assert main(["share", "phone", "--text"], secrets=memory) == ExitCode.OK
    text = capsys.readouterr().out.strip()
    assert text.startswith("KEY_BASE64:") and " HMAC_KEY_BASE64:" in text
    return text


def test_png_decodes_to_the_share_text(
    profile_with_keys: str, memory: MemoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "share.png"
    assert main(["share", "phone", "--png", str(png)], secrets=memory) == ExitCode.OK
    assert "holds the profile's keys" in capsys.readouterr().err
    assert oct(png.stat().st_mode & 0o777) == "0o600"
    assert _decode(png) == profile_with_keys


def test_terminal_code_decodes_to_the_share_text(
    profile_with_keys: str,
    memory: MemoryStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["share", "phone"], secrets=memory) == ExitCode.OK
    terminal = capsys.readouterr().out
    assert set(terminal) <= {" ", "\u2588", "\u2580", "\u2584", "\n"}
    # level L and a 2-module quiet zone: a base64 key pair fits in 27 lines (it took 35 at Q)
    assert len(terminal.splitlines()) <= 27
    png = tmp_path / "terminal.png"
    _png_from_matrix(_matrix_from_terminal(terminal), png, monkeypatch)
    assert _decode(png) == profile_with_keys


def test_svg_is_written_private(
    profile_with_keys: str, memory: MemoryStore, tmp_path: Path
) -> None:
    svg = tmp_path / "share.svg"
    assert main(["share", "phone", "--svg", str(svg)], secrets=memory) == ExitCode.OK
    assert svg.read_text().lstrip().startswith("<?xml")
    assert oct(svg.stat().st_mode & 0o777) == "0o600"


def test_import_share_from_a_qr_image(
    profile_with_keys: str, memory: MemoryStore, tmp_path: Path
) -> None:
    png = tmp_path / "share.png"
    qr.write_png(profile_with_keys, png)
    assert (
        main(
            ["import-share", "laptop", "--image", str(png), "-D", "spa.example.org"], secrets=memory
        )
        == ExitCode.OK
    )
    shared = parse_share(profile_with_keys)
    assert memory.get_many("laptop", ["rijndael", "hmac"]) == {
        "rijndael": shared.rijndael.to_base64() if shared.rijndael else None,
        "hmac": shared.hmac.to_base64() if shared.hmac else None,
    }
    assert encode_share(shared.rijndael, shared.hmac) == profile_with_keys
