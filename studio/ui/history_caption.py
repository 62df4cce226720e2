"""History captions: the prompt on at most two lines under the thumbnail, the second elided."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

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

    def __init__(self, width: int, icon_side: int, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self._width = width
        self._icon_side = icon_side

    def sizeHint(self, option: QStyleOptionViewItem,  # noqa: N802 (Qt override)
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        # Every item the same size, whatever its caption: the list's uniform sizes come from one item,
        # and a narrow first caption made Qt elide the wider ones again.
        return QSize(self._width, self._icon_side + CAPTION_LINES * option.fontMetrics.lineSpacing() + 8)

    def initStyleOption(self, option: QStyleOptionViewItem,  # noqa: N802 (Qt override)
                        index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        # Qt keeps a focus-frame margin on both sides of the text: wrap within what is left, so it
        # does not wrap our lines again into a third.
        margin = 2 * (option.widget.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1) + 2
        option.text = caption(option.text, option.fontMetrics, self._width - margin)
