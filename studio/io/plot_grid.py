"""The labelled grid image of an X/Y/Z plot, in plain PIL and numpy.

As AUTOMATIC1111 draws it: X values name the columns above the cells, Y values the rows to their
left, and each Z value gets a sub-grid of its own, titled above, side by side. Cells keep their pixels
(never scaled); a column is as wide as its widest cell and a row as tall as its tallest, so a Size
axis still lines up. A failed cell is left blank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
BLANK_CELL = (224, 224, 224)
INK = (24, 24, 24)
MIN_FONT = 8


@dataclass(frozen=True)
class PlotGrid:
    image: np.ndarray  # uint8 [H, W, 3]
    boxes: tuple[tuple[int, int, int, int] | None, ...]  # (left, top, width, height) per cell index


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _width(font, text: str) -> float:
    return font.getlength(text)


def _wrap(text: str, width: float, font) -> list[str]:
    """``text`` in lines no wider than ``width`` (breaking at spaces); a word too long is cut with an ellipsis."""
    lines: list[str] = []
    for word in text.split():
        if lines and _width(font, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
            continue
        if _width(font, word) > width:
            cut = word
            while len(cut) > 1 and _width(font, cut + "…") > width:
                cut = cut[:-1]
            word = cut + "…"
        lines.append(word)
    return lines or [""]


def _fit(labels: list[str], width: float, size: int) -> tuple[ImageFont.ImageFont, list[list[str]]]:
    """The largest font up to ``size`` at which every word of every label fits ``width``, and the wrapped lines."""
    for s in range(size, MIN_FONT - 1, -1):
        font = _font(s)
        if all(_width(font, word) <= width for label in labels for word in label.split()):
            break
    return font, [_wrap(label, width, font) for label in labels]


def _line_height(font) -> int:
    top, bottom = font.getbbox("Ag")[1::2]
    return int(bottom - top) + max(2, int(bottom - top) // 3)


def compose_plot_grid(cells: list[np.ndarray | None], shape: tuple[int, int, int], x_labels: tuple[str, ...] = (),
                      y_labels: tuple[str, ...] = (), z_labels: tuple[str, ...] = ()) -> PlotGrid:
    """The grid of ``cells`` (indexed ix + iy * nx + iz * nx * ny) with its labels; empty labels: none drawn."""
    nx, ny, nz = shape
    if len(cells) != nx * ny * nz:
        raise ValueError(f"a {nx}x{ny}x{nz} plot needs {nx * ny * nz} cells, got {len(cells)}")
    present = [c for c in cells if c is not None]
    if not present:
        raise ValueError("the plot has no finished image to put in a grid")
    fallback = present[0].shape[:2]

    def size(i: int) -> tuple[int, int]:  # (height, width)
        return cells[i].shape[:2] if cells[i] is not None else fallback

    col_w = [max(size(ix + iy * nx + iz * nx * ny)[1] for iy in range(ny) for iz in range(nz)) for ix in range(nx)]
    row_h = [max(size(ix + iy * nx + iz * nx * ny)[0] for ix in range(nx) for iz in range(nz)) for iy in range(ny)]
    typical = int(np.median(col_w + row_h))
    base_size = max(11, min(28, typical // 12))
    pad = max(3, base_size // 3)

    x_font, x_lines = _fit(list(x_labels), min(col_w) - 2, base_size) if x_labels else (None, [])
    left_w = 0
    if y_labels:
        y_font, y_lines = _fit(list(y_labels), max(typical, 96), base_size)
        left_w = int(max(_width(y_font, line) for lines in y_lines for line in lines)) + 2 * pad
    top_h = (max(len(lines) for lines in x_lines) * _line_height(x_font) + 2 * pad) if x_lines else 0
    body_w, body_h = left_w + sum(col_w), top_h + sum(row_h)
    z_font, z_lines = _fit(list(z_labels), body_w - 2 * pad, base_size + 2) if z_labels else (None, [])
    title_h = (max(len(lines) for lines in z_lines) * _line_height(z_font) + 2 * pad) if z_lines else 0
    gap = 4 * pad if nz > 1 else 0

    out = Image.new("RGB", (nz * body_w + (nz - 1) * gap, title_h + body_h), BACKGROUND)
    draw = ImageDraw.Draw(out)
    boxes: list[tuple[int, int, int, int] | None] = [None] * len(cells)
    col_x = np.cumsum([0, *col_w])
    row_y = np.cumsum([0, *row_h])
    for iz in range(nz):
        ox = iz * (body_w + gap)
        if z_lines:
            _draw_lines(draw, z_lines[iz], z_font, ox + body_w / 2, pad, "ma")
        grid_x, grid_y = ox + left_w, title_h + top_h
        for ix in range(nx):
            if x_lines:
                _draw_lines(draw, x_lines[ix], x_font, grid_x + col_x[ix] + col_w[ix] / 2, title_h + pad, "ma")
        for iy in range(ny):
            if y_labels:
                block = len(y_lines[iy]) * _line_height(y_font)
                top = grid_y + row_y[iy] + (row_h[iy] - block) / 2
                _draw_lines(draw, y_lines[iy], y_font, ox + left_w - pad, top, "ra")
            for ix in range(nx):
                i = ix + iy * nx + iz * nx * ny
                h, w = size(i)
                left = int(grid_x + col_x[ix] + (col_w[ix] - w) // 2)
                top = int(grid_y + row_y[iy] + (row_h[iy] - h) // 2)
                if cells[i] is None:
                    draw.rectangle((left, top, left + w - 1, top + h - 1), fill=BLANK_CELL)
                    continue
                out.paste(Image.fromarray(np.ascontiguousarray(cells[i][..., :3])), (left, top))
                boxes[i] = (left, top, w, h)
    return PlotGrid(np.asarray(out), tuple(boxes))


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str], font, x: float, top: float, anchor: str) -> None:
    step = _line_height(font)
    for n, line in enumerate(lines):
        draw.text((x, top + n * step), line, fill=INK, font=font, anchor=anchor)
