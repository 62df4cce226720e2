"""Canvas timings: show_frame for 64 px and 1024 px previews, and a brush stroke.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_canvas.py
"show_frame" is the call alone (what the sampler callback pays); "+ paint" adds a
synchronous repaint of the canvas, i.e. the whole cost of getting the frame on screen.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.ui.canvas import CanvasView  # noqa: E402

VIEW_PX = 900
REPEATS = 30


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1e3:7.3f} ms   max {max(samples) * 1e3:7.3f} ms"


def time_it(fn, repeats: int = REPEATS) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    rng = np.random.default_rng(0)
    canvas = CanvasView()
    canvas.resize(VIEW_PX, VIEW_PX)
    canvas.show()
    app.processEvents()
    canvas.set_image(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8), undoable=False)
    canvas.zoom_fit()
    canvas.set_mask(rng.random((1024, 1024), dtype=np.float32) > 0.5)
    app.processEvents()
    print(f"Canvas {VIEW_PX}x{VIEW_PX} px, document 1024x1024, zoom {canvas.zoom():.2f} (fit), mask over half")

    for size in (64, 1024):
        frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
        i = iter(range(10**9))
        call = time_it(lambda frames=frames, i=i: canvas.show_frame(frames[next(i) % 4]))
        painted = time_it(lambda frames=frames, i=i: (canvas.show_frame(frames[next(i) % 4]), canvas.repaint()))
        print(f"show_frame {size:4d}px          {ms(call)}")
        print(f"show_frame {size:4d}px + paint  {ms(painted)}")
    canvas.show_document()

    full = time_it(canvas.repaint)
    print(f"full repaint, document+mask   {ms(full)}")

    # A 60-move stroke with a 64 px soft brush; each move is flushed like a 60 fps event loop would.
    canvas.clear_mask()
    canvas.set_brush_size(64)
    canvas.set_hardness(0.5)
    points = [canvas.map_from_image(QPointF(100 + 13 * k, 300 + 200 * np.sin(k / 8))).toPoint() for k in range(60)]
    per_move = []
    t0 = time.perf_counter()
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
    app.processEvents()
    for p in points[1:]:
        t = time.perf_counter()
        QTest.mouseMove(canvas, p)
        app.processEvents()
        per_move.append(time.perf_counter() - t)
    t = time.perf_counter()
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])
    app.processEvents()
    release = time.perf_counter() - t
    total = time.perf_counter() - t0
    print(f"stroke move (paint+repaint)   {ms(per_move)}")
    print(f"stroke release (undo commit)  {release * 1e3:7.3f} ms;  whole 60-move stroke {total * 1e3:.1f} ms")
    painted = canvas.mask()
    assert painted is not None and canvas.undo_stack().count() >= 1, "the stroke did not paint"
    print(f"  (stroke covered {float((painted > 0).mean()) * 100:.1f} % of the document)")

    # A tiny document magnified: the nearest-neighbour path.
    canvas.set_image(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), undoable=False)
    canvas.zoom_fit()
    tiny = time_it(canvas.repaint)
    print(f"full repaint, 64px at {canvas.zoom():.1f}x   {ms(tiny)}")


if __name__ == "__main__":
    main()
