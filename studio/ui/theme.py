"""The studio's look: Fusion style with a dark palette and the stylesheet in studio/resources/style/."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ..resource_files import resource_dir

STYLE_DIR = resource_dir("style")


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1e2027", QPalette.ColorRole.WindowText: "#e6e8ee",
        QPalette.ColorRole.Base: "#16181d", QPalette.ColorRole.AlternateBase: "#22252d",
        QPalette.ColorRole.Text: "#e6e8ee", QPalette.ColorRole.Button: "#2a2d36",
        QPalette.ColorRole.ButtonText: "#e6e8ee", QPalette.ColorRole.Highlight: "#4f8cff",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2a2d36",
        QPalette.ColorRole.ToolTipText: "#e6e8ee", QPalette.ColorRole.PlaceholderText: "#7c8291",
        QPalette.ColorRole.Link: "#7fb0ff", QPalette.ColorRole.BrightText: "#ff6b6b",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#646a78"))
    return p


def apply_theme(app: QApplication, name: str = "dark") -> None:
    app.setStyle("Fusion")
    if name == "light":
        app.setPalette(app.style().standardPalette())
        app.setStyleSheet(_read("common.qss"))
        return
    app.setPalette(dark_palette())
    app.setStyleSheet(_read("common.qss") + _read("dark.qss"))


def _read(name: str) -> str:
    try:
        text = (STYLE_DIR / name).read_text(encoding="utf-8")
    except OSError:
        return ""  # a missing stylesheet leaves the palette: plainer, still usable
    # Style sheet urls resolve against the working directory; point them at our icons wherever we run from.
    return text.replace("{icons}", (STYLE_DIR / "icons").as_posix())
