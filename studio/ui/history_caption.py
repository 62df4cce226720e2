"""History captions: the prompt on at most two lines under the thumbnail, the second elided."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

CAPTION_LINES = 2


def caption(text: str, metrics: QFontMetrics, width: int, lines: int = CAPTION_LINES) -> str:
    """``text`` wrapped at word boundaries into ``lines`` lines of ``width`` pixels; the last one elided."""
    rest = " ".join(text.split())
    out: list[str] = []
    while len(out) < lines - 1 and metrics.horizontalAdvance(rest) > width:
        words = rest.split(" ")
        line, used = words[0], 1
        while used < len(words) and metrics.horizontalAdvance(f"{line} {words[used]}") <= width:
            line = f"{line} {words[used]}"
            used += 1
        out.append(metrics.elidedText(line, Qt.TextElideMode.ElideRight, width))  # a word too long alone
        rest = " ".join(words[used:])
    if rest:
        out.append(metrics.elidedText(rest, Qt.TextElideMode.ElideRight, width))
    return "\n".join(out)


class CaptionDelegate(QStyledItemDelegate):
    """Draws each history item with its caption cut to CAPTION_LINES lines of the item's width."""

    def __init__(self, width: int, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self._width = width

    def initStyleOption(self, option: QStyleOptionViewItem,  # noqa: N802 (Qt override)
                        index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.text = caption(option.text, option.fontMetrics, self._width)
