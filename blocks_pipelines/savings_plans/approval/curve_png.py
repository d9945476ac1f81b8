"""A savings-curve chart as a PNG, in pure Python (zlib + struct): the approval packet needs one small line chart,
which does not justify matplotlib and its stack in every code location.

The chart: expected savings ($ over the term) against the hourly commitment, a dot at the recommendation, a
dashed line at zero (past it, more commitment loses money), axis ticks labelled with a 3x5 pixel font.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

WIDTH, HEIGHT = 560, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 16, 34
BACKGROUND, AXIS, GRID, CURVE, MARK, ZERO = (
    (255, 255, 255),
    (60, 60, 60),
    (225, 225, 225),
    (31, 119, 180),
    (214, 39, 40),
    (150, 150, 150),
)
# 3x5 glyphs, rows top to bottom, bits left to right
GLYPHS = {
    "0": (7, 5, 5, 5, 7),
    "1": (2, 6, 2, 2, 7),
    "2": (7, 1, 7, 4, 7),
    "3": (7, 1, 7, 1, 7),
    "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7),
    "6": (7, 4, 7, 5, 7),
    "7": (7, 1, 1, 1, 1),
    "8": (7, 5, 7, 5, 7),
    "9": (7, 5, 7, 1, 7),
    ".": (0, 0, 0, 0, 2),
    "-": (0, 0, 7, 0, 0),
    "$": (3, 6, 2, 3, 6),
    "k": (4, 5, 6, 5, 5),
    "M": (5, 7, 7, 5, 5),
    "/": (1, 1, 2, 4, 4),
    "h": (4, 4, 7, 5, 5),
    " ": (0, 0, 0, 0, 0),
}


class _Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(BACKGROUND) * (width * height))

    def dot(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i : i + 3] = bytes(color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color, width: int = 1, dash: int = 0) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0), 1))
        for s in range(steps + 1):
            if dash and (s // dash) % 2:
                continue
            x, y = x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps
            for dx in range(-(width // 2), width - width // 2):
                for dy in range(-(width // 2), width - width // 2):
                    self.dot(round(x) + dx, round(y) + dy, color)

    def disc(self, cx: float, cy: float, r: int, color) -> None:
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                if dx * dx + dy * dy <= r * r:
                    self.dot(round(cx) + dx, round(cy) + dy, color)

    def text(self, x: int, y: int, text: str, color=AXIS, scale: int = 2) -> None:
        for k, ch in enumerate(text):
            rows = GLYPHS.get(ch, GLYPHS[" "])
            for r, bits in enumerate(rows):
                for c in range(3):
                    if bits >> (2 - c) & 1:
                        for sx in range(scale):
                            for sy in range(scale):
                                self.dot(x + (k * 4 + c) * scale + sx, y + r * scale + sy, color)

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[3 * y * self.width : 3 * (y + 1) * self.width]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
        )


def _money(v: float) -> str:
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v >= 1e6:
        return f"{sign}${v / 1e6:.1f}M"
    if v >= 1e3:
        return f"{sign}${v / 1e3:.0f}k"
    return f"{sign}${v:.0f}"


def savings_curve_png(points: Sequence[tuple[float, float]], chosen: float) -> bytes:
    """points: (hourly commitment $/h, expected savings $) sorted by commitment; chosen: the recommended $/h."""
    canvas = _Canvas(WIDTH, HEIGHT)
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    if not points:
        return canvas.png()
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_max = max(max(xs), chosen, 1e-9)
    y_min, y_max = min(min(ys), 0.0), max(max(ys), 1e-9)

    def px(x: float) -> float:
        return left + (right - left) * x / x_max

    def py(y: float) -> float:
        return bottom - (bottom - top) * (y - y_min) / (y_max - y_min)

    for i in range(5):  # gridlines and tick labels
        gy = y_min + (y_max - y_min) * i / 4
        canvas.line(left, py(gy), right, py(gy), GRID)
        canvas.text(4, round(py(gy)) - 5, _money(gy))
        gx = x_max * i / 4
        canvas.line(px(gx), top, px(gx), bottom, GRID)
        canvas.text(round(px(gx)) - 12, bottom + 8, f"{gx:.1f}" if x_max < 100 else f"{gx:.0f}")
    canvas.line(left, top, left, bottom, AXIS)
    canvas.line(left, bottom, right, bottom, AXIS)
    canvas.line(left, py(0.0), right, py(0.0), ZERO, dash=4)
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        canvas.line(px(x0), py(y0), px(x1), py(y1), CURVE, width=2)
    chosen_y = min(points, key=lambda p: abs(p[0] - chosen))[1]
    canvas.disc(px(chosen), py(chosen_y), 5, MARK)
    canvas.text(right - 40, bottom + 8 + 12, "$/h", scale=2)
    return canvas.png()
