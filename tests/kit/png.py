"""Reading a PNG's pixels with the standard library (zlib, struct): enough to tell a rendered
page from a blank one without an imaging dependency."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel at bit depth 8 (RGB, RGBA)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]  # unfiltered scanlines, `width * channels` bytes each

    def pixels(self, rows: range | None = None) -> Iterator[bytes]:
        """Each pixel's RGB bytes (alpha dropped), row by row: of every row, or of ``rows``."""
        step = self.channels
        for y in rows if rows is not None else range(self.height):
            row = self.rows[y]
            for x in range(0, len(row), step):
                yield row[x : x + 3]

    def bands(self, count: int) -> list[Counter[bytes]]:
        """How often each colour occurs in each of ``count`` horizontal bands, top to bottom."""
        size = -(-self.height // count)
        return [
            Counter(self.pixels(range(top, min(top + size, self.height))))
            for top in range(0, self.height, size)
        ]


def read_png(data: bytes) -> Image:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG, as Chromium writes screenshots."""
    assert data[:8] == SIGNATURE, "not a PNG file"
    header, compressed, pos = b"", bytearray(), 8
    while pos < len(data):
        (length, kind), body = struct.unpack(">I4s", data[pos : pos + 8]), data[pos + 8 :]
        if kind == b"IHDR":
            header = body[:13]
        elif kind == b"IDAT":
            compressed += body[:length]
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in CHANNELS and interlace == 0, (depth, colour, interlace)
    channels = CHANNELS[colour]
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        previous = _unfilter(kind, line, previous, channels)
        rows.append(previous)
    return Image(width, height, channels, rows)


def _unfilter(kind: int, line: bytes, above: bytes, bpp: int) -> bytes:
    """Undo one scanline's filter (PNG spec §9.2)."""
    if kind == 0:
        return line
    if kind == 2:
        return bytes((a + b) & 255 for a, b in zip(line, above, strict=True))
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            out[i] = (out[i] + left) & 255
        elif kind == 3:
            out[i] = (out[i] + ((left + above[i]) >> 1)) & 255
        elif kind == 4:
            up_left = above[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + _paeth(left, above[i], up_left)) & 255
        else:
            raise AssertionError(f"unknown PNG filter type {kind}")
    return bytes(out)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
