"""Drive the real studio window under X (see screenshots.sh) and save screenshots of it to docs/screenshots/.

Each picture is taken from the X screen itself (ImageMagick ``import``), so it shows what a user sees.
Usage: DISPLAY=:99 python scripts/screenshots.py [--model toy] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DIFFUSION_STUDIO_TEST_MODELS", "1")  # --model toy is a test model: list it
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.ui.event_loop import run_until as _run_until  # noqa: E402

PROMPTS = {"toy": "red circle", "embedded": "a red apple"}


def run_until(done, timeout_s: float = 300.0) -> None:
    _run_until(done, timeout_s)


def pause(seconds: float) -> None:
    until = time.perf_counter() + seconds
    run_until(lambda: time.perf_counter() > until)


def shoot(window, out: Path, name: str) -> None:
    pause(0.4)  # let the X server show the last paint
    g = window.frameGeometry()
    path = out / f"{name}.png"
    subprocess.run(["import", "-window", "root", "-crop", f"{g.width()}x{g.height()}+{g.x()}+{g.y()}",
                    "+repage", str(path)], check=True)
    print("saved", path)


def open_studio(model_arg: str, on_shown=None):
    """(app, studio, model key): a fresh window (its own settings folder) at 1600x960 with its engine ready.

    ``on_shown(window)`` runs once the window is up, while torch still loads on the engine thread."""
    os.environ["DIFFUSION_STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-shots-")
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Diffusion Studio")
    from studio.app import create_studio

    studio = create_studio(app=app)
    window = studio.window
    window.move(0, 0)
    window.resize(1600, 960)
    window.show()
    run_until(lambda: window.isVisible())
    studio.start_engine()
    if on_shown is not None:
        on_shown(window)
    run_until(lambda: window.status.engine_label.text().startswith("Ready"))
    catalog = studio.controller.catalog
    return app, studio, catalog.default_model if model_arg == "default" else model_arg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="toy", help="model key; 'default' takes the engine's default")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # The first picture while torch still loads on the engine thread: the window is already up.
    app, studio, model = open_studio(args.model, lambda window: shoot(window, args.out, "00-startup"))
    window, controller, panel = studio.window, studio.controller, studio.window.panel
    prompt = PROMPTS.get(model, "a red apple")
    size = next((m.default_size for m in controller.catalog.models if m.key == model), None)
    panel.set_values(panel.values().with_changes(model=model, prompt=prompt, steps=24, seed=11, seed_mode="fixed",
                                                 batch_count=1))
    run_until(lambda: window.status.engine_label.text().startswith("Ready"))
    if size is not None:
        panel.set_values(panel.values().with_changes(width=size[0], height=size[1]))

    settled: list[object] = []
    controller.job_settled.connect(settled.append)
    controller.generate()
    run_until(lambda: len(settled) == 1)
    window.canvas.zoom_fit()
    shoot(window, args.out, "01-generated")

    window.timeline_view.slider.setValue(6)
    shoot(window, args.out, "02-scrubbed-step")

    window.timeline_view.slider.setValue(0)
    panel.set_values(panel.values().with_changes(prompt=prompt.replace("red", "blue")))
    window.timeline_view.branch_button.click()
    run_until(lambda: len(settled) == 2)
    window.canvas.zoom_fit()
    shoot(window, args.out, "03-branch")

    canvas = window.canvas
    canvas.set_brush_size(max(3, canvas.image().shape[1] // 6))
    # A stroke across the lower left of the image, as a user would drag it.
    rect = canvas.rect()
    start = QPoint(rect.center().x() - rect.height() // 3, rect.center().y() + rect.height() // 4)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    for i in range(1, 25):
        point = start + QPoint(i * rect.height() // 48, -int(abs(12 - i) * rect.height() / 160))
        move = QMouseEvent(QEvent.Type.MouseMove, QPointF(point), QPointF(canvas.mapToGlobal(point)),
                           Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, move)
        pause(0.01)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=point)
    shoot(window, args.out, "04-mask")

    # A long run caught half way: progress (step n of N, it/s, time left), the queue and Cancel.
    long_run = panel.values()
    panel.set_values(long_run.with_changes(prompt="green triangle", steps=400, width=128, height=128,
                                           batch_count=2, seed=5))
    canvas.clear_mask()
    controller.generate()
    run_until(lambda: controller.timeline.current is not None and len(controller.timeline.current.frames) > 150
              and controller.timeline.current.values.prompt == "green triangle")
    shoot(window, args.out, "06-generating")
    run_until(lambda: len(settled) == 4)
    panel.set_values(long_run)

    panel.set_values(panel.values().with_changes(model="no-such-model"))
    controller.generate()
    run_until(lambda: len(settled) == 5)
    shoot(window, args.out, "05-error-message")

    controller.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
