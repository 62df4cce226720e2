"""Canvas timings: show_frame for 64 px and 1024 px previews, and a brush stroke.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_canvas.py [--quick]
"show_frame" is the call alone (what the sampler callback pays); "+ paint" adds a
synchronous repaint of the canvas, i.e. the whole cost of getting the frame on screen.
--quick: a 256 px document, 3 repeats, a 10-move stroke (a smoke test of the script).
"""

from __future__ import annotations

import argparse
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


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1e3:7.3f} ms   max {max(samples) * 1e3:7.3f} ms"


def time_it(fn, repeats: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small document, few repeats: a smoke test")
    args = parser.parse_args()
    doc, repeats, moves = (256, 3, 10) if args.quick else (1024, 30, 60)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    rng = np.random.default_rng(0)
    canvas = CanvasView()
    canvas.resize(VIEW_PX, VIEW_PX)
    canvas.show()
    app.processEvents()
    canvas.set_image(rng.integers(0, 256, (doc, doc, 3), dtype=np.uint8), undoable=False)
    canvas.zoom_fit()
    canvas.set_mask(rng.random((doc, doc), dtype=np.float32) > 0.5)
    app.processEvents()
    print(f"Canvas {VIEW_PX}x{VIEW_PX} px, document {doc}x{doc}, zoom {canvas.zoom():.2f} (fit), mask over half")

    for size in (64, doc):
        frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
        i = iter(range(10**9))
        call = time_it(lambda frames=frames, i=i: canvas.show_frame(frames[next(i) % 4]), repeats)
        painted = time_it(lambda frames=frames, i=i: (canvas.show_frame(frames[next(i) % 4]), canvas.repaint()),
                          repeats)
        print(f"show_frame {size:4d}px          {ms(call)}")
        print(f"show_frame {size:4d}px + paint  {ms(painted)}")
    canvas.show_document()

    full = time_it(canvas.repaint, repeats)
    print(f"full repaint, document+mask   {ms(full)}")

    # A stroke of ``moves`` moves with a 64 px soft brush (on the 1024 px document); each move is flushed
    # like a 60 fps event loop would.
    canvas.clear_mask()
    scale = doc / 1024
    canvas.set_brush_size(max(4, round(64 * scale)))
    canvas.set_hardness(0.5)
    points = [canvas.map_from_image(QPointF(scale * (100 + 13 * k * 60 / moves), scale * (300 + 200 * np.sin(k / 8))))
              .toPoint() for k in range(moves)]
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
    print(f"stroke release (undo commit)  {release * 1e3:7.3f} ms;  whole {moves}-move stroke {total * 1e3:.1f} ms")
    painted = canvas.mask()
    assert painted is not None and canvas.undo_stack().count() >= 1, "the stroke did not paint"
    print(f"  (stroke covered {float((painted > 0).mean()) * 100:.1f} % of the document)")

    # A tiny document magnified: the nearest-neighbour path.
    canvas.set_image(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), undoable=False)
    canvas.zoom_fit()
    tiny = time_it(canvas.repaint, repeats)
    print(f"full repaint, 64px at {canvas.zoom():.1f}x   {ms(tiny)}")


if __name__ == "__main__":
    main()
