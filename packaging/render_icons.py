"""Render the studio's icon (studio/resources/icons/diffusion-studio.svg) to the PNG sizes desktops ask for.

Run after editing the SVG: python packaging/render_icons.py (writes studio/resources/icons/diffusion-studio-<N>.png).
The window uses the PNGs (studio/ui/app_icon.py), so the running app needs no SVG plugin; install_desktop.sh puts
them in the hicolor icon theme. QSvgRenderer is in PySide6-Essentials, so no other tool is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from studio.ui.app_icon import ICON_DIR, ICON_SIZES, SVG_FILE, png_file  # noqa: E402


def render_svg(svg: Path, size: int) -> QImage:
    """The SVG drawn on a transparent size x size image."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG file QSvgRenderer can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def main() -> int:
    QGuiApplication.instance() or QGuiApplication([])
    for size in ICON_SIZES:
        out = png_file(size)
        if not render_svg(SVG_FILE, size).save(str(out), "PNG"):
            print(f"could not write {out}", file=sys.stderr)
            return 1
        print(f"{out.relative_to(ICON_DIR.parents[2])}: {size}x{size}, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
