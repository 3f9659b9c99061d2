"""Draws the add-on's icon.png (128x128) and logo.png (250x100): a module on a blue
ground with signal bars. Plain zlib PNG writing, so it needs nothing installed.

    python scripts/make_addon_icons.py ha-addon
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

Pixel = tuple[int, int, int, int]
BLUE: Pixel = (3, 169, 244, 255)  # Home Assistant's blue
WHITE: Pixel = (255, 255, 255, 255)
DARK: Pixel = (20, 40, 60, 255)


def png(width: int, height: int, paint: Callable[[int, int], Pixel]) -> bytes:
    rows = b"".join(
        b"\0" + b"".join(bytes(paint(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def emblem(x: int, y: int, size: int) -> Pixel:
    """A chip with four signal bars, in a size x size square."""
    u = size / 16
    if 2 * u <= x < 9 * u and 6 * u <= y < 13 * u:  # the module
        inner = 3 * u <= x < 8 * u and 7 * u <= y < 12 * u
        return DARK if inner else WHITE
    for bar in range(4):  # signal bars, rising to the right
        left = (10 + bar * 1.25) * u
        if left <= x < left + u and (12 - (bar + 1) * 2.2) * u <= y < 13 * u:
            return WHITE
    return BLUE


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "icon.png").write_bytes(png(128, 128, lambda x, y: emblem(x, y, 128)))
    (folder / "logo.png").write_bytes(
        png(250, 100, lambda x, y: emblem(x, y, 100) if x < 100 else BLUE)
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "ha-addon"))
