"""Prompt box timings: pasting a huge prompt and typing at the length cap, in the real prompt panel.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_prompt_box.py [--quick]
Each figure is the paste (or keystrokes) plus the event processing after it: how long the window
cannot answer. "plain box" is a QPlainTextEdit without the cap and the long-word wrapping, for
contrast: its time grows with the square of a word's length (issue 10: a 200 KB one-word
prompt froze the window for seconds). Goal: every panel figure under 100 ms.
--quick: a 40,000-character paste, a 10,000-character plain box, 3 keystrokes (a smoke test).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QPlainTextEdit  # noqa: E402

from studio.ui.prompt_edit import PromptEdit  # noqa: E402
from studio.ui.prompt_panel import PromptPanel  # noqa: E402


def blocked(app: QApplication, action) -> float:  # noqa: ANN001
    """Seconds from the action until the event loop is free again."""
    t = time.perf_counter()
    action()
    app.processEvents()
    return time.perf_counter() - t


def paste(app: QApplication, box: QPlainTextEdit, text: str) -> float:
    box.clear()
    app.processEvents()
    QGuiApplication.clipboard().setText(text)
    box.setFocus()
    return blocked(app, lambda: QTest.keyClick(box, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller texts, few keys: a smoke test")
    args = parser.parse_args()
    size, plain_size, keys = (40_000, 10_000, 3) if args.quick else (200_000, 40_000, 20)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    panel = PromptPanel()
    panel.resize(340, 900)
    panel.show()
    app.processEvents()
    box = panel.prompt
    print(f"Prompt panel 340 px wide; prompts are cut at {PromptEdit.MAX_CHARS:,} characters")
    for label, text in (("one word", "a" * size), ("words", ("red heart " * (size // 10 + 1))[:size])):
        seconds = paste(app, box, text)
        print(f"paste {size:,} chars ({label}) into the panel: {seconds * 1e3:8.1f} ms "
              f"(kept {len(box.toPlainText()):,})")
    box.setPlainText("a" * (PromptEdit.MAX_CHARS - keys))
    box.moveCursor(box.textCursor().MoveOperation.End)
    app.processEvents()
    seconds = blocked(app, lambda: QTest.keyClicks(box, "b" * keys))
    print(f"per key at the cap (one word): {seconds / keys * 1e3:8.1f} ms")
    plain = QPlainTextEdit()
    plain.resize(300, 70)
    plain.show()
    seconds = paste(app, plain, "a" * plain_size)
    print(f"plain box, paste {plain_size:,} chars (one word): {seconds * 1e3:8.1f} ms  (no cap, word wrapping)")


if __name__ == "__main__":
    main()
