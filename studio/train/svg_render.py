"""Draw Iconify SVG icons (the Fluent emoji sets on npm) as 64 px RGB pictures on white.

Qt's SVG renderer is already a dependency of the studio, so the training data
needs no cairo or resvg. Iconify stores each icon's inner SVG ``body`` and its
box size; an alias names a parent icon, possibly mirrored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

SIZE = 64


class IconSet:
    """One Iconify JSON package: icon bodies by name, and emoji code points to names."""

    def __init__(self, package: Path, chars_from: Path | None = None) -> None:
        """``chars_from``: a sibling package whose chars.json names the same icons (Iconify's
        colour Fluent set ships an empty one; its names are the flat set's)."""
        data = json.loads((package / "icons.json").read_text())
        self._icons: dict[str, dict] = data["icons"]
        self._aliases: dict[str, dict] = data.get("aliases", {})
        self._width = int(data.get("width", 16))
        self._height = int(data.get("height", 16))
        chars = json.loads(((chars_from or package) / "chars.json").read_text())
        known = self._icons.keys() | self._aliases.keys()
        self._by_code = {_code_key(code): name for code, name in chars.items() if name in known}

    def name_for(self, code: str) -> str | None:
        """The icon drawn for an emoji code such as ``1F44B-1F3FB`` (FE0F ignored), or None."""
        return self._by_code.get(_code_key(code))

    def render(self, name: str) -> np.ndarray:
        """uint8 [64, 64, 3], the icon fitted to the square and composited on white."""
        flip = False
        while name in self._aliases:
            alias = self._aliases[name]
            flip ^= bool(alias.get("hFlip", False))
            name = alias["parent"]
        icon = self._icons[name]
        width, height = icon.get("width", self._width), icon.get("height", self._height)
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="0 0 {width} {height}" width="{SIZE}" height="{SIZE}">{icon["body"]}</svg>'
        )
        pixels = _rasterise(svg.encode())
        return pixels[:, ::-1].copy() if flip else pixels


def _code_key(code: str) -> str:
    return "-".join(p for p in code.lower().split("-") if p != "fe0f")


def _rasterise(svg: bytes) -> np.ndarray:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    if QGuiApplication.instance() is None:  # QPainter on a QImage wants an application object
        _rasterise.app = QGuiApplication([])  # type: ignore[attr-defined]
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise ValueError("the icon's SVG could not be read")
    image = QImage(SIZE, SIZE, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    bgra = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(SIZE, image.bytesPerLine() // 4, 4)
    return bgra[:, :SIZE, 2::-1].copy()
