"""The studio's application icon: the window's icon, from the PNGs rendered from our SVG.

The PNGs (packaging/render_icons.py renders them) rather than the SVG, so the window gets its icon without Qt's
SVG icon-engine plugin, which the bundle leaves out.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

from ..resource_files import resource_dir

ICON_DIR = resource_dir("icons")
SVG_FILE = ICON_DIR / "diffusion-studio.svg"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)  # the hicolor theme's usual sizes


def png_file(size: int) -> Path:
    return ICON_DIR / f"diffusion-studio-{size}.png"


def app_icon() -> QIcon:
    """Every PNG size in one QIcon: the window manager picks the size it draws (title bar, task switcher)."""
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(png_file(size)))
    return icon
