"""QR codes of the key-share text, for the terminal, PNG and SVG.

The text is the Fwknop2 grammar (``KEY_BASE64:<b64> HMAC_KEY_BASE64:<b64>``,
fwknop_core's ``encode_share``).

Size matters more than damage tolerance here: the code is read off a screen,
never off worn paper, so it is encoded at error-correction level L (fwknop-gui
uses Q: a base64 key pair then needs version 11, 69x69 modules with the quiet
zone, 35 terminal lines; at L it is version 8, 49 modules). On a terminal the
quiet zone is 2 modules (``TERMINAL_QUIET_ZONE``) instead of the 4 the
standard asks for: zbar and phone scanners read it, and the code then takes
27 lines. Files keep the full 4 modules (they may be printed). Tests decode
the rendered screen with zbarimg, scaled down to phone-camera size.

The terminal form packs two module rows into one line with half blocks;
light modules are drawn, so it scans on a dark terminal (``invert`` for
light ones). PNG is written by a few lines of zlib here (one grey channel
needs no imaging library); SVG comes from qrcode's path image. Files are
created 0600 from their first byte (``atomic_write(private=True)``): a QR of keys is a key.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

__all__ = [
    "QUIET_ZONE",
    "TERMINAL_QUIET_ZONE",
    "decode_image",
    "qr_matrix",
    "render_terminal",
    "terminal_lines",
    "write_png",
    "write_svg",
]

QUIET_ZONE = 4  # files: what the standard asks for
TERMINAL_QUIET_ZONE = 2  # screens: the smallest margin scanners read reliably
_CHARS = {
    (False, False): " ",
    (True, True): "\u2588",
    (True, False): "\u2580",
    (False, True): "\u2584",
}


def _code(text: str, border: int, **options: object) -> Any:
    import qrcode  # noqa: PLC0415
    from qrcode.constants import ERROR_CORRECT_L  # noqa: PLC0415

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=border, **options)
    code.add_data(text.encode("utf-8"), optimize=0)
    code.make(fit=True)
    return code


def qr_matrix(text: str, *, border: int = TERMINAL_QUIET_ZONE) -> list[list[bool]]:
    """Rows of modules (True = dark), quiet zone included (a terminal's, unless given)."""
    return [list(row) for row in _code(text, border).get_matrix()]


def terminal_lines(modules: int) -> int:
    """Terminal lines a code of ``modules`` per side takes (two module rows a line)."""
    return (modules + 1) // 2


def render_terminal(text: str, *, invert: bool = False) -> str:
    """The QR code as half-block text lines (light modules drawn unless ``invert``)."""
    matrix = qr_matrix(text)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        cells = []
        for t, b in zip(top, bottom, strict=True):
            draw_t, draw_b = (t, b) if invert else (not t, not b)
            cells.append(_CHARS[(draw_t, draw_b)])
        lines.append("".join(cells))
    return "\n".join(lines) + "\n"


def _write_private(path: Path, data: bytes) -> None:
    from .wallet.profiles import atomic_write  # noqa: PLC0415 - a new 0600 file, never the old one

    atomic_write(path, data, private=True)


def png_bytes(text: str, *, scale: int = 8) -> bytes:
    """An 8-bit greyscale PNG of the code, ``scale`` pixels per module."""
    matrix = qr_matrix(text, border=QUIET_ZONE)
    raw = bytearray()
    for row in matrix:
        line = b"".join((b"\x00" if dark else b"\xff") * scale for dark in row)
        for _ in range(scale):
            raw += b"\x00" + line
    width, height = len(matrix[0]) * scale, len(matrix) * scale

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack("!I", len(body))
            + kind
            + body
            + struct.pack("!I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack("!IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def write_png(text: str, path: Path, *, scale: int = 8) -> None:
    """Write the code as a PNG file (mode 0600)."""
    _write_private(path, png_bytes(text, scale=scale))


def write_svg(text: str, path: Path) -> None:
    """Write the code as an SVG file (mode 0600)."""
    from qrcode.image.svg import SvgPathImage  # noqa: PLC0415

    buf = io.BytesIO()
    _code(text, QUIET_ZONE, image_factory=SvgPathImage).make_image().save(buf)
    _write_private(path, buf.getvalue())


def decode_image(path: str | Path) -> str:
    """The text of the QR code in an image, read with zbarimg (``ClientUsageError`` if none)."""
    import subprocess  # noqa: PLC0415

    from .errors import ClientUsageError  # noqa: PLC0415

    try:
        res = subprocess.run(
            ["zbarimg", "--raw", "-q", str(path)], capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise ClientUsageError(
            "reading a QR image needs zbarimg (apt-get install zbar-tools)"
        ) from None
    if res.returncode != 0:
        raise ClientUsageError(f"no QR code found in {path}")
    return res.stdout.decode("utf-8", "replace")
