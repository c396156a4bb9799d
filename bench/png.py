"""A tiny PNG bar chart writer (zlib + struct, a built-in 5x7 font): no plotting library."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

# Classic 5x7 column font for ASCII 0x20..0x7A: 5 column bytes per glyph,
# bit 0 = top row (bit 7: descenders).
_FONT_HEX = (
    "0000000000"
    "00005f0000"
    "0007000700"
    "147f147f14"
    "242a7f2a12"
    "2313086462"
    "3649552250"
    "0005030000"
    "001c224100"
    "0041221c00"
    "082a1c2a08"
    "08083e0808"
    "0050300000"
    "0808080808"
    "0060600000"
    "2010080402"
    "3e5149453e"
    "00427f4000"
    "4261514946"
    "2141454b31"
    "1814127f10"
    "2745454539"
    "3c4a494930"
    "0171090503"
    "3649494936"
    "064949291e"
    "0036360000"
    "0056360000"
    "0008142241"
    "1414141414"
    "4122140800"
    "0201510906"
    "324979413e"
    "7e1111117e"
    "7f49494936"
    "3e41414122"
    "7f4141221c"
    "7f49494941"
    "7f09090101"
    "3e41415132"
    "7f0808087f"
    "00417f4100"
    "2040413f01"
    "7f08142241"
    "7f40404040"
    "7f0204027f"
    "7f0408107f"
    "3e4141413e"
    "7f09090906"
    "3e4151215e"
    "7f09192946"
    "4649494931"
    "01017f0101"
    "3f4040403f"
    "1f2040201f"
    "7f2018207f"
    "6314081463"
    "0304780403"
    "6151494543"
    "00007f4141"
    "0204081020"
    "41417f0000"
    "0402010204"
    "4040404040"
    "0001020400"
    "2054545478"
    "7f48444438"
    "3844444420"
    "384444487f"
    "3854545418"
    "087e090102"
    "081454543c"
    "7f08040478"
    "00447d4000"
    "2040443d00"
    "007f102844"
    "00417f4000"
    "7c04180478"
    "7c08040478"
    "3844444438"
    "7c14141408"
    "081414187c"
    "7c08040408"
    "4854545420"
    "043f444020"
    "3c4040207c"
    "1c2040201c"
    "3c4030403c"
    "4428102844"
    "0c5050503c"
    "4464544c44"
)
_GLYPHS = {
    chr(0x20 + i): bytes.fromhex(_FONT_HEX[i * 10 : i * 10 + 10])
    for i in range(len(_FONT_HEX) // 10)
}

WHITE, BLACK, GREY = (255, 255, 255), (40, 40, 40), (200, 200, 200)
BLUE, GREEN, RED = (70, 110, 190), (60, 150, 80), (200, 60, 50)


class Canvas:
    def __init__(self, width: int, height: int, background=WHITE):
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, color) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x1 <= x0:
            return
        fill = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            self.rows[y][x0 * 3 : x1 * 3] = fill

    def text(self, x: int, y: int, text: str, color=BLACK, scale: int = 2) -> int:
        """Draw ``text`` with its top-left at (x, y); returns the x after it."""
        for char in text:
            glyph = _GLYPHS.get(char, _GLYPHS["?"])
            for col, bits in enumerate(glyph):
                for row in range(8):
                    if bits >> row & 1:
                        px, py = x + col * scale, y + row * scale
                        self.rect(px, py, px + scale, py + scale, color)
            x += 6 * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 6 * scale


def bar_chart(
    path: Path,
    title: str,
    bars: list[tuple[str, float, float | None, bool | None]],
    subtitle: str = "",
) -> None:
    """Horizontal bars ``(label, value, target or None, met or None)`` with a line at 1.0.

    Bars are green when their target is met, red when missed, blue without a target;
    a target is a dark tick across its bar.
    """
    label_w = max([text_width(label) for label, *_ in bars] + [200]) + 20
    plot_w, row_h, top = 560, 30, 70
    width = label_w + plot_w + 90
    height = top + row_h * len(bars) + 50
    top_value = max([1.2, *(value for _, value, *_ in bars)])
    scale_x = plot_w / top_value
    canvas = Canvas(width, height)
    canvas.text(10, 10, title, scale=2)
    if subtitle:
        canvas.text(10, 36, subtitle, color=(90, 90, 90), scale=1)
    x0 = label_w
    for tick in [i / 10 for i in range(0, int(top_value * 10) + 1, 2)]:
        x = x0 + round(tick * scale_x)
        canvas.rect(x, top - 6, x + 1, top + row_h * len(bars), GREY)
        canvas.text(x - 9, top + row_h * len(bars) + 8, f"{tick:.1f}", color=(90, 90, 90), scale=1)
    one = x0 + round(scale_x)
    canvas.rect(one - 1, top - 10, one + 1, top + row_h * len(bars) + 4, BLACK)
    for i, (label, value, target, met) in enumerate(bars):
        y = top + i * row_h
        canvas.text(label_w - 10 - text_width(label), y + 8, label)
        color = BLUE if met is None else (GREEN if met else RED)
        end = x0 + max(1, round(value * scale_x))
        canvas.rect(x0, y + 5, end, y + row_h - 5, color)
        canvas.text(end + 6, y + 8, f"{value:.2f}")
        if target is not None:
            tx = x0 + round(target * scale_x)
            canvas.rect(tx - 1, y + 1, tx + 2, y + row_h - 1, BLACK)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canvas.png())
