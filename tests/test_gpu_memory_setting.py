"""Settings → GPU memory as a user meets it: saved and read back, chosen in the dialog (the wheel passing over
the box leaves it alone), and carried to the engine, which places the loaded model anew and says so on its card."""

from __future__ import annotations

import json

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.engine.memory_modes import OFFLOAD_MODES
from studio.state.settings import Settings, load_settings, save_settings


def test_the_setting_is_saved_and_a_bad_value_falls_back_to_automatic(tmp_path):
    path = tmp_path / "settings.json"
    save_settings(path, Settings(gpu_memory="sequential"))
    assert load_settings(path).settings.gpu_memory == "sequential"
    path.write_text(json.dumps({"gpu_memory": "all of it"}))
    assert load_settings(path).settings.gpu_memory == "auto"


def test_the_dialog_offers_each_mode_and_the_wheel_does_not_change_it(qtbot):
    from studio.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(gpu_memory="model"))
    qtbot.addWidget(dialog)
    box = dialog.gpu_memory
    assert tuple(box.itemData(i) for i in range(box.count())) == OFFLOAD_MODES
    assert box.currentText() == "One part at a time (model offload)"
    dialog.show()
    dialog.folders.setFocus()
    centre = QPointF(box.rect().center())
    wheel = QWheelEvent(centre, QPointF(box.mapToGlobal(box.rect().center())), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(box, wheel)
    assert box.currentData() == "model"  # a scroll passing over the unfocused box
    box.setCurrentIndex(box.findData("sequential"))
    assert dialog.settings().gpu_memory == "sequential"


class PlacedToy:
    """The toy model with a ``place`` of its own: records each placement asked for, as a flow model would."""

    def __init__(self, asked: list[str]):
        from studio.engine.models.toy import ToyShapesModel

        self._toy = ToyShapesModel()
        self.asked = asked

    def __getattr__(self, name):
        return getattr(self._toy, name)

    def place(self, mode: str, free: int | None = None):
        from studio.engine.models.flow.offload import MemoryPlan

        self.asked.append(mode)
        return MemoryPlan("model" if mode == "auto" else mode, "as asked")


def test_the_session_loads_with_the_setting_and_places_the_loaded_model_anew_when_it_changes(monkeypatch):
    from studio.worker import engine_session
    from studio.worker.engine_session import EngineSession

    loads, placed = [], []
    monkeypatch.setattr(engine_session, "load_model",
                        lambda key, device, offload, **parts: loads.append(offload) or PlacedToy(placed))
    session = EngineSession("cpu")
    session.gpu_memory = "sequential"
    session.ensure_model("toy")
    assert loads == ["sequential"] and placed == []  # the loader placed it (load_flow_model: place_model)
    session.ensure_model("toy")
    assert loads == ["sequential"] and placed == []  # the same setting: nothing moves
    session.gpu_memory = "model"
    choice = session.ensure_model("toy")
    assert loads == ["sequential"] and placed == ["model"]  # placed anew, not read from disk again
    assert choice.loaded_as == ("GPU memory: one part at a time on the GPU (model offload): as asked",)


def test_the_setting_reaches_the_engine_at_start_and_when_changed(qtbot):
    from studio.worker import EngineClient

    client = EngineClient()
    try:
        with qtbot.waitSignal(client.worker.model_loaded, timeout=60_000):
            client.start("cpu", 0, "toy", gpu_memory="sequential")
        assert client.worker._session.gpu_memory == "sequential"
        client.set_gpu_memory("model")
        qtbot.waitUntil(lambda: client.worker._session.gpu_memory == "model", timeout=10_000)
    finally:
        client.stop()


def test_a_setting_changed_in_the_window_reaches_the_running_engine(qtbot, tmp_path):
    from test_ui_studio import TIMEOUT, make_studio

    from studio.state.paths import StudioPaths

    studio = make_studio(qtbot, tmp_path)
    try:
        controller = studio.controller
        controller.apply_settings(controller.settings.with_changes(gpu_memory="none"))
        worker = controller.engine.worker
        qtbot.waitUntil(lambda: worker._session.gpu_memory == "none", timeout=TIMEOUT)
        assert load_settings(StudioPaths.under(tmp_path).settings_file).settings.gpu_memory == "none"
    finally:
        controller.shutdown()


def test_no_box_of_the_settings_dialog_changes_under_a_passing_wheel(qtbot):
    """The wheel over Device, CPU threads, Theme or Run on (unfocused) leaves each as it was: found in the real
    window, where scrolling over the dialog turned Device from Automatic into CUDA GPU."""
    from studio.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(device="auto", threads=2, theme="dark"))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.folders.setFocus()
    boxes = [dialog.device, dialog.threads, dialog.theme, dialog.gpu_memory, dialog.engine_box.engine]
    before = dialog.settings()
    for box in boxes:
        for delta in (-120, 120):  # one notch each way, checked after each (two would cancel out)
            centre = QPointF(box.rect().center())
            wheel = QWheelEvent(centre, QPointF(box.mapToGlobal(box.rect().center())), QPoint(0, 0),
                                QPoint(0, delta), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                Qt.ScrollPhase.NoScrollPhase, False)
            QApplication.sendEvent(box, wheel)
            assert dialog.settings() == before, box
