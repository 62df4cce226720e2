"""The control layer on the canvas: drawn with real mouse events, shown and hidden, undone, resized, dropped on."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget  # noqa: E402

from studio.ui.canvas import CanvasToolbar, CanvasView  # noqa: E402
from tests.test_ui_canvas import SIZE, _drag_events, at, gradient, stroke  # noqa: E402


@pytest.fixture
def canvas(qtbot) -> CanvasView:
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(440, 440)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.full((SIZE, SIZE, 3), 200, np.uint8), undoable=False)  # light: white lines must still show
    view.set_zoom(2.0)
    view.set_brush_size(8)
    view.set_hardness(1.0)
    return view


def shown(view: CanvasView, x: int, y: int) -> tuple[int, int, int]:
    """The colour the canvas shows over image pixel (x, y)."""
    view.repaint()
    color = view.grab().toImage().pixelColor(at(view, x, y))
    return color.red(), color.green(), color.blue()


def test_strokes_in_control_mode_draw_white_on_the_control_layer_not_the_mask(canvas, qtbot):
    assert canvas.control_image() is None and not canvas.has_control()
    canvas.set_control_mode(True)
    with qtbot.waitSignal(canvas.control_changed):
        stroke(canvas, [(40, 100), (100, 100), (160, 100)])
    control = canvas.control_image()
    assert control is not None and control.dtype == np.uint8 and control.shape == (SIZE, SIZE, 3)
    assert np.all(control[97:104, 40:161] == 255)  # white along the whole path
    assert np.all(control[:90] == 0) and np.all(control[111:] == 0)  # black (empty) elsewhere
    assert canvas.mask() is None  # the mask was not touched
    assert canvas.undo_stack().undoText() == "Paint control layer"

    canvas.set_tool("eraser")
    stroke(canvas, [(100, 90), (100, 110)])
    assert np.all(canvas.control_image()[95:106, 98:103] == 0)  # the eraser paints black

    canvas.set_control_mode(False)  # back to the mask: strokes paint it, the control layer stays
    canvas.set_tool("brush")
    stroke(canvas, [(20, 20), (30, 20)])
    assert canvas.mask() is not None and np.array_equal(canvas.control_image()[15:26, 15:36], np.zeros((11, 21, 3)))


def test_undo_and_redo_walk_control_strokes_back_and_forth(canvas):
    canvas.set_control_mode(True)
    stroke(canvas, [(40, 50), (160, 50)])
    first = canvas.control_image()
    stroke(canvas, [(40, 150), (160, 150)])
    second = canvas.control_image()
    stack = canvas.undo_stack()
    stack.undo()
    assert np.array_equal(canvas.control_image(), first)
    stack.undo()
    assert canvas.control_image() is None
    stack.redo()
    stack.redo()
    assert np.array_equal(canvas.control_image(), second)
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_Delete)  # Delete clears the layer being edited: one undo step
    assert canvas.control_image() is None and stack.undoText() == "Clear control layer"
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(canvas.control_image(), second)


def test_the_layer_shows_in_control_mode_only_with_its_lines_white_over_a_dimmed_image(canvas):
    canvas.set_control_mode(True)
    stroke(canvas, [(40, 100), (160, 100)])
    assert shown(canvas, 100, 100) == (255, 255, 255)  # the line, at full white, over a light image
    dimmed = shown(canvas, 100, 40)
    assert max(dimmed) < 140  # the image under an empty part is dimmed, so white lines stand out
    canvas.set_control_mode(False)
    assert shown(canvas, 100, 100) == (200, 200, 200) == shown(canvas, 100, 40)  # hidden: the image as it is
    canvas.set_control_mode(True)
    canvas.show_frame(np.zeros((SIZE, SIZE, 3), np.uint8))  # a generation's preview hides it, like the mask
    assert shown(canvas, 100, 100) == (0, 0, 0)


def test_toolbar_follows_the_control_mode_and_clears_the_layer_it_shows(canvas, qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    bar = CanvasToolbar(canvas, host)
    QVBoxLayout(host).addWidget(bar)
    assert not bar.control_button.isChecked() and not bar.preview_button.isEnabled()
    bar.control_button.click()
    assert canvas.control_mode() and bar.control_button.isChecked()
    assert not bar.invert_button.isEnabled() and "control layer" in bar.brush_button.toolTip()
    assert not bar.clear_button.isEnabled()  # nothing on the layer yet
    stroke(canvas, [(40, 100), (160, 100)])
    assert bar.clear_button.isEnabled() and bar.preview_button.isEnabled()
    stroke_mask_free = canvas.mask() is None
    bar.clear_button.click()
    assert canvas.control_image() is None and stroke_mask_free
    canvas.set_control_mode(False)  # e.g. from the window's Ctrl+L
    assert not bar.control_button.isChecked() and bar.invert_button.isEnabled()


def test_a_preview_map_replaces_the_layer_until_the_layer_changes(canvas):
    canvas.set_control_mode(True)
    stroke(canvas, [(40, 100), (160, 100)])
    edges = np.zeros((SIZE // 2, SIZE // 2, 3), np.uint8)  # any size: stretched over the document
    edges[:, 10] = 255
    canvas.show_control_preview(edges)
    assert canvas.is_previewing_control()
    assert shown(canvas, 100, 100) != (255, 255, 255) and shown(canvas, 21, 150) == (255, 255, 255)
    stroke(canvas, [(40, 150), (60, 150)])  # drawing shows the layer itself again
    assert not canvas.is_previewing_control()
    assert shown(canvas, 100, 100) == (255, 255, 255)


def test_the_layer_follows_the_document_through_new_sizes_extend_and_undo(canvas):
    canvas.set_control_mode(True)
    stroke(canvas, [(40, 100), (160, 100)])
    drawn = canvas.control_image()
    canvas.set_image(gradient(SIZE * 2, SIZE * 2))  # a result of another size: the scribble is stretched
    bigger = canvas.control_image()
    assert bigger.shape == (SIZE * 2, SIZE * 2, 3) and np.all(bigger[200, 80:320] == 255)
    canvas.undo_stack().undo()
    assert np.array_equal(canvas.control_image(), drawn)
    canvas.extend(8, 0, 0, 0)
    extended = canvas.control_image()
    assert extended.shape == (SIZE, SIZE + 8, 3) and np.array_equal(extended[:, 8:], drawn)
    assert not extended[:, :8].any()


def test_loading_an_image_into_the_layer_shows_it_and_is_one_undo_step(canvas):
    picture = gradient(50, 80)
    canvas.set_control_image(picture)
    assert canvas.control_mode()
    loaded = canvas.control_image()
    assert loaded.shape == (SIZE, SIZE, 3) and np.array_equal(loaded[0, 0], picture[0, 0])
    assert np.array_equal(loaded[-1, -1], picture[-1, -1])
    assert np.array_equal(canvas.image()[0, 0], [200, 200, 200])  # the document image is not touched
    canvas.undo_stack().undo()
    assert canvas.control_image() is None


def test_a_drop_in_control_mode_or_with_alt_goes_to_the_control_layer(canvas, qtbot, tmp_path):
    path = tmp_path / "edges.png"
    path.write_bytes(b"")  # only the name matters to the drop
    mime, enter, _ = _drag_events(path)

    def drop(modifiers: Qt.KeyboardModifier) -> None:
        QApplication.sendEvent(canvas, enter)
        event = QDropEvent(QPointF(at(canvas, 100, 100)), Qt.DropAction.CopyAction, mime,
                           Qt.MouseButton.LeftButton, modifiers)
        QApplication.sendEvent(canvas, event)

    with qtbot.waitSignal(canvas.image_dropped):
        drop(Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(canvas.control_image_dropped):
        drop(Qt.KeyboardModifier.AltModifier)
    canvas.set_control_mode(True)
    with qtbot.assertNotEmitted(canvas.image_dropped), qtbot.waitSignal(canvas.control_image_dropped):
        drop(Qt.KeyboardModifier.NoModifier)
