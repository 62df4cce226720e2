"""Image → Upscale… and a history image's Upscale…, in the real window (offscreen), on the engine thread."""

import importlib.util

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from studio.engine.models.sd.discovery import ENV_DIRS
from studio.engine.upscalers.testing import save_rrdb
from studio.state.paths import StudioPaths

pytestmark = pytest.mark.skipif(importlib.util.find_spec("spandrel") is None, reason="spandrel not installed")
TIMEOUT = 30_000


@pytest.fixture
def studio(qtbot, tmp_path, monkeypatch):
    from studio.app import create_studio

    models = tmp_path / "webui" / "models"
    (models / "Stable-diffusion").mkdir(parents=True)
    save_rrdb(models / "ESRGAN" / "TinyUI_x4.pth")
    (models / "ESRGAN" / "Broken_x4.pth").write_bytes(b"not a model at all" * 20)
    monkeypatch.setenv(ENV_DIRS, str(models / "Stable-diffusion"))
    s = create_studio(StudioPaths.under(tmp_path / "home"))
    qtbot.addWidget(s.window)
    s.window.show()
    panel = s.window.panel
    panel.set_values(panel.values().with_changes(model="toy", prompt="red circle", steps=3, width=24, height=16))
    s.start_engine()
    qtbot.waitUntil(lambda: s.window.status.engine_label.text().startswith("Ready")
                    and panel.model.currentData() == "toy", timeout=60_000)
    s.controller.upscaler.tile = 32  # several tiles on a small image
    yield s
    s.controller.shutdown()


def test_upscale_the_canvas_then_a_history_image(studio, qtbot):
    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    studio.window.canvas.set_image(source)
    studio.controller.files.document_parameters = "red circle\nSteps: 3, Sampler: Euler, Seed: 5, Size: 64x48"
    history = studio.window.history_view.model
    rows = history.rowCount()
    studio.window.upscale_action.trigger()
    dialog = studio.controller.upscaler.dialog
    assert dialog.isVisible() and dialog.chosen() == "Lanczos"
    qtbot.waitUntil(lambda: dialog.upscaler.findText("TinyUI_x4") >= 0, timeout=TIMEOUT)
    dialog.upscaler.setCurrentText("TinyUI_x4")
    assert dialog.result_label.text() == "256x192"
    progress = []
    studio.engine.upscale_progress.connect(lambda p: progress.append((p.done, p.total)))
    with qtbot.waitSignal(studio.controller.upscaler.upscaled, timeout=TIMEOUT) as blocker:
        QTest.mouseClick(dialog.upscale_button, Qt.MouseButton.LeftButton)
        assert dialog.running and not dialog.upscale_button.isEnabled()
    entry = blocker.args[0]
    assert not dialog.isVisible() and studio.controller.upscaler.dialog is None
    assert progress[-1] == (6, 6) and len(progress) == 6  # 3 x 2 tiles, each reported
    assert history.rowCount() == rows + 1 and history.entry(0) is entry
    assert studio.window.canvas.image().shape == (192, 256, 3)
    assert entry.parameters.endswith("Seed: 5, Size: 64x48, Postprocess upscale by: 4, "
                                     "Postprocess upscaler: TinyUI_x4")
    assert "192" in studio.window.statusBar().currentMessage()

    # The new history entry, upscaled again from its context menu with Lanczos.
    studio.controller.history.writer.flush()  # its file is written on the background writer
    view = studio.window.history_view.list
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(history.index(0)).center())
    assert studio.window.history_view.selected() is entry
    assert studio.controller.upscaler.history_action in studio.window.history_view.list.actions()
    studio.controller.upscaler.history_action.trigger()
    dialog = studio.controller.upscaler.dialog
    dialog.upscaler.setCurrentText("Lanczos")
    dialog.scale.setValue(1.5)
    with qtbot.waitSignal(studio.controller.upscaler.upscaled, timeout=TIMEOUT) as blocker:
        dialog.upscale_button.click()
    assert blocker.args[0].width == 384 and blocker.args[0].height == 288
    assert history.rowCount() == rows + 2


def test_a_broken_file_is_named_in_the_dialog_and_cancel_stops_after_a_tile(studio, qtbot):
    studio.window.canvas.set_image(np.full((48, 64, 3), 90, np.uint8))
    rows = studio.window.history_view.model.rowCount()
    dialog = studio.controller.upscaler.upscale_canvas()
    qtbot.waitUntil(lambda: dialog.upscaler.findText("Broken_x4") >= 0, timeout=TIMEOUT)
    dialog.upscaler.setCurrentText("Broken_x4")
    dialog.upscale_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT)
    assert dialog.isVisible() and "Broken_x4.pth" in dialog.error_label.text()
    assert dialog.upscaler.isEnabled() and dialog.upscale_button.isEnabled()

    dialog.upscaler.setCurrentText("TinyUI_x4")
    dialog.upscale_button.click()
    dialog.close_button.click()  # Cancel while it runs
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT)
    assert dialog.isVisible() and dialog.error_label.text() == "Upscale cancelled after tile 1 of 6."
    assert studio.window.history_view.model.rowCount() == rows
    dialog.close_button.click()
    assert not dialog.isVisible()
