"""CanvasView and CanvasToolbar, driven with real Qt mouse/key events (pytest-qt, offscreen)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import (  # noqa: E402
    QAction,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
    QPalette,
    QWheelEvent,
)
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QLineEdit, QMainWindow, QVBoxLayout, QWidget  # noqa: E402

from studio.ui.canvas import CanvasToolbar, CanvasView  # noqa: E402

SIZE = 200


def gradient(h: int = SIZE, w: int = SIZE) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 90)], -1).astype(np.uint8)


@pytest.fixture
def canvas(qtbot) -> CanvasView:
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(440, 440)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(gradient(), undoable=False)
    view.set_zoom(2.0)  # 2 widget px per image px: mouse positions land on exact pixels
    return view


def at(view: CanvasView, x: float, y: float) -> QPoint:
    """The widget point over image pixel centre (x, y)."""
    return view.map_from_image(QPointF(x + 0.5, y + 0.5)).toPoint()


def stroke(view: CanvasView, points: list[tuple[float, float]], modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.mousePress(view, Qt.MouseButton.LeftButton, modifiers, at(view, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(view, at(view, *p))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, modifiers, at(view, *points[-1]))


# ---------------------------------------------------------------------------------- painting
def test_mask_is_none_until_painted(canvas):
    assert canvas.mask() is None
    assert not canvas.has_mask()


def test_stroke_paints_where_painted_and_nowhere_else(canvas, qtbot):
    canvas.set_brush_size(20)
    canvas.set_hardness(1.0)
    with qtbot.waitSignal(canvas.mask_changed):
        stroke(canvas, [(40, 100), (70, 100), (100, 100), (160, 100)])
    m = canvas.mask()
    assert m is not None and m.dtype == np.float32 and m.shape == (SIZE, SIZE)
    assert np.all(m[95:106, 40:161] == 1.0)  # the whole path, not beads at the mouse events
    assert np.all(m[:85, :] == 0) and np.all(m[116:, :] == 0)  # beyond the 10 px radius
    assert np.all(m[:, :28] == 0) and np.all(m[:, 173:] == 0)
    assert canvas.has_mask()
    assert canvas.undo_stack().count() == 1


def test_a_whole_stroke_is_one_undo_step_and_one_signal(canvas, qtbot):
    emitted = []
    canvas.mask_changed.connect(lambda: emitted.append(1))
    stroke(canvas, [(20 + 10 * i, 50 + (i % 3) * 5) for i in range(15)])
    assert canvas.undo_stack().count() == 1
    assert len(emitted) == 1  # not once per mouse move


def test_eraser_removes(canvas):
    canvas.set_brush_size(30)
    canvas.set_hardness(1.0)
    stroke(canvas, [(30, 100), (170, 100)])
    canvas.set_tool("eraser")
    stroke(canvas, [(100, 60), (100, 140)])
    m = canvas.mask()
    assert np.all(m[90:111, 90:111] == 0)
    assert np.all(m[90:111, 40:70] == 1)  # the rest of the stroke is untouched
    assert canvas.undo_stack().count() == 2


def test_soft_brush_has_feathered_edges(canvas):
    canvas.set_brush_size(40)
    canvas.set_hardness(0.2)
    stroke(canvas, [(100, 100)])
    m = canvas.mask()
    profile = m[100, 100:125]
    assert profile[0] == pytest.approx(1.0, abs=1e-6)
    partial = profile[(profile > 0) & (profile < 1)]
    assert len(partial) >= 8  # a real ramp, not an anti-aliased rim
    assert np.all(np.diff(profile) <= 1e-6)  # falls off monotonically


def test_hard_brush_only_antialiases_its_rim(canvas):
    canvas.set_brush_size(40)
    canvas.set_hardness(1.0)
    stroke(canvas, [(100, 100)])
    profile = canvas.mask()[100, 100:125]
    partial = profile[(profile > 0) & (profile < 1)]
    assert len(partial) <= 1


def test_shift_click_draws_a_straight_line_from_the_last_stroke(canvas):
    canvas.set_brush_size(6)
    canvas.set_hardness(1.0)
    stroke(canvas, [(20, 20)])
    stroke(canvas, [(180, 20)], modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert np.all(canvas.mask()[20, 20:181] == 1.0)


# ---------------------------------------------------------------------------------- undo
def test_undo_redo_restore_the_exact_mask(canvas):
    canvas.set_hardness(0.35)
    stroke(canvas, [(30, 30), (120, 90)])
    first = canvas.mask()
    canvas.set_brush_size(70)
    stroke(canvas, [(100, 150), (60, 60)])
    second = canvas.mask()
    stack = canvas.undo_stack()
    stack.undo()
    assert np.array_equal(canvas.mask(), first)
    stack.undo()
    assert canvas.mask() is None
    stack.redo()
    assert np.array_equal(canvas.mask(), first)
    stack.redo()
    assert np.array_equal(canvas.mask(), second)


def test_undo_keys(canvas):
    stroke(canvas, [(50, 50), (90, 90)])
    painted = canvas.mask()
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert canvas.mask() is None
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(canvas.mask(), painted)
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(canvas.mask(), painted)


def test_canvas_keys_win_over_window_shortcuts_while_it_has_focus(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    central = QWidget()
    view = CanvasView(central)
    other = QWidget(central)
    other.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    row = QVBoxLayout(central)
    row.addWidget(view)
    row.addWidget(other)
    window.setCentralWidget(central)
    fired = []
    action = QAction("Window undo", window)
    action.setShortcut(QKeySequence("Ctrl+Z"))
    action.triggered.connect(lambda: fired.append(1))
    window.addAction(action)
    window.resize(400, 400)
    window.show()
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)  # window shortcuts only fire in the active window
    view.setFocus()
    view.set_image(gradient(), undoable=False)
    stroke(view, [(100, 100)])
    QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.mask() is None and fired == []
    other.setFocus()  # elsewhere in the window, the window's shortcut applies
    QTest.keyClick(other, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert fired == [1]


def test_a_lost_release_still_commits_the_stroke(canvas):
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(canvas, 50, 50))
    # No release (another window took it); the next press starts a new stroke.
    stroke(canvas, [(150, 150)])
    assert canvas.undo_stack().count() == 2
    canvas.undo_stack().undo()
    canvas.undo_stack().undo()
    assert canvas.mask() is None


def test_clear_and_invert_are_undoable(canvas):
    canvas.set_hardness(0.5)
    stroke(canvas, [(60, 60), (140, 140)])
    painted = canvas.mask()
    canvas.invert_mask()
    np.testing.assert_allclose(canvas.mask(), 1.0 - painted, atol=1e-7)
    canvas.clear_mask()
    assert canvas.mask() is None and not canvas.has_mask()
    canvas.clear_mask()  # already empty: no extra undo step
    assert canvas.undo_stack().count() == 3
    canvas.undo_stack().undo()
    np.testing.assert_allclose(canvas.mask(), 1.0 - painted, atol=1e-7)
    canvas.undo_stack().undo()
    assert np.array_equal(canvas.mask(), painted)


def test_invert_of_an_empty_mask_masks_everything(canvas):
    canvas.invert_mask()
    assert np.all(canvas.mask() == 1.0)


def test_set_mask_accepts_float_bool_and_uint8(canvas):
    m = np.zeros((SIZE, SIZE), np.float32)
    m[10:20, 30:40] = 0.5
    canvas.set_mask(m)
    assert np.array_equal(canvas.mask(), m)
    canvas.set_mask(m > 0)
    assert canvas.mask()[15, 35] == 1.0
    canvas.set_mask((m * 2 * 255).astype(np.uint8))
    assert canvas.mask()[15, 35] == 1.0 and canvas.mask()[0, 0] == 0.0
    canvas.set_mask(np.zeros((SIZE, SIZE)))
    assert canvas.mask() is None
    with pytest.raises(ValueError):
        canvas.set_mask(np.zeros((10, 10)))


# ---------------------------------------------------------------------------------- image
def test_set_image_with_a_new_size_resets_the_mask(canvas, qtbot):
    stroke(canvas, [(50, 50)])
    with qtbot.waitSignal(canvas.image_changed):
        canvas.set_image(gradient(64, 96))
    assert canvas.image().shape == (64, 96, 3)
    assert canvas.mask() is None
    canvas.undo_stack().undo()
    assert canvas.image().shape == (SIZE, SIZE, 3) and canvas.has_mask()


def test_set_image_with_the_same_size_keeps_the_mask(canvas):
    stroke(canvas, [(50, 50)])
    painted = canvas.mask()
    canvas.set_image(255 - gradient())
    assert np.array_equal(canvas.image(), 255 - gradient())
    assert np.array_equal(canvas.mask(), painted)


def test_image_returns_a_copy(canvas):
    img = canvas.image()
    img[:] = 0
    assert canvas.image().max() > 0


def test_extend_grows_image_and_mask_and_undo_restores(canvas):
    canvas.set_brush_size(10)
    stroke(canvas, [(100, 100)])
    before_img, before_mask = canvas.image(), canvas.mask()
    canvas.extend(10, 20, 30, 40)
    img, m = canvas.image(), canvas.mask()
    assert img.shape == (SIZE + 60, SIZE + 40, 3) and m.shape == (SIZE + 60, SIZE + 40)
    assert np.array_equal(img[20:220, 10:210], before_img)
    assert np.array_equal(m[20:220, 10:210], before_mask)  # the old mask is kept inside
    new_area = np.ones_like(m, bool)
    new_area[20:220, 10:210] = False
    assert np.all(m[new_area] == 1.0)
    assert np.array_equal(img[0, 10:210], before_img[0])  # edge-replicated fill
    assert canvas.undo_stack().count() == 2
    canvas.undo_stack().undo()
    assert np.array_equal(canvas.image(), before_img)
    assert np.array_equal(canvas.mask(), before_mask)
    canvas.undo_stack().redo()
    assert canvas.image().shape == (SIZE + 60, SIZE + 40, 3)


def test_extend_with_grey_fill_and_rejects_shrinking(canvas):
    canvas.extend(0, 0, 8, 0, fill="grey")
    assert np.all(canvas.image()[:, SIZE:] == 128)
    with pytest.raises(ValueError):
        canvas.extend(-1, 0, 0, 0)


def test_show_frame_leaves_document_and_undo_alone(canvas):
    canvas.set_overlay(opacity=0.0)
    stroke(canvas, [(50, 50)])
    doc, mask, count = canvas.image(), canvas.mask(), canvas.undo_stack().count()
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[..., 2] = 255
    canvas.show_frame(frame)
    assert canvas.is_showing_frame()
    assert np.array_equal(canvas.image(), doc) and np.array_equal(canvas.mask(), mask)
    assert canvas.undo_stack().count() == count
    centre = at(canvas, 100, 100)
    assert QColor(canvas.grab().toImage().pixel(centre)) == QColor(0, 0, 255)  # stretched over the document
    canvas.show_document()
    assert QColor(canvas.grab().toImage().pixel(centre)) != QColor(0, 0, 255)
    canvas.show_frame(np.zeros((1024, 1024), np.uint8))  # greyscale and large frames too
    canvas.set_image(gradient())  # a new document replaces the preview
    assert not canvas.is_showing_frame()


def test_overlay_is_drawn_in_its_colour(canvas):
    canvas.set_overlay(QColor(0, 255, 0), 1.0)
    canvas.set_mask(np.ones((SIZE, SIZE), np.float32))
    assert QColor(canvas.grab().toImage().pixel(at(canvas, 100, 100))) == QColor(0, 255, 0)


# ---------------------------------------------------------------------------------- keys, zoom, pan
def test_hovering_reports_the_pixel_and_its_mask_value(canvas, qtbot):
    canvas.set_mask(np.ones((SIZE, SIZE), np.float32))
    with qtbot.waitSignal(canvas.pixel_hovered) as blocker:
        QTest.mouseMove(canvas, at(canvas, 37, 81))
    assert blocker.args == [37, 81, 1.0]


def test_bracket_keys_change_the_brush_size(canvas, qtbot):
    canvas.set_brush_size(40)
    canvas.setFocus()
    with qtbot.waitSignal(canvas.brush_size_changed):
        QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > 40
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < 40
    canvas.brush_size = 1
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 1


def test_tool_keys(canvas):
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_E)
    assert canvas.tool() == "eraser"
    QTest.keyClick(canvas, Qt.Key.Key_X)
    assert canvas.tool() == "brush"


def test_zoom_fit_and_100(canvas, qtbot):
    with qtbot.waitSignal(canvas.zoom_changed):
        canvas.zoom_100()
    assert canvas.zoom() == 1.0
    canvas.zoom_fit()
    assert canvas.zoom() == pytest.approx((440 - 24) / SIZE)
    canvas.set_image(gradient(32, 32))  # a tiny image fits magnified, shown with crisp pixels
    assert canvas.zoom() > 10
    assert not canvas._smooth_scaling()


def test_zoomed_out_fine_detail_averages_instead_of_aliasing(canvas):
    checker = np.indices((512, 512)).sum(0) % 2 * 255
    canvas.set_image(np.repeat(checker[:, :, None], 3, 2).astype(np.uint8), undoable=False)
    canvas.set_zoom(0.2)
    img = canvas.grab().toImage()
    centre = canvas.rect().center()
    values = [QColor(img.pixel(centre.x() + d, centre.y() + d)).red() for d in range(-20, 21, 5)]
    assert all(abs(v - 127) < 25 for v in values), values


def test_wheel_zooms_around_the_cursor(canvas):
    pos = QPointF(at(canvas, 40, 60))
    under = canvas.map_to_image(pos)
    zoom = canvas.zoom()
    event = QWheelEvent(
        pos, canvas.mapToGlobal(pos), QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(canvas, event)
    assert canvas.zoom() > zoom
    after = canvas.map_to_image(pos)
    assert after.x() == pytest.approx(under.x(), abs=1e-6) and after.y() == pytest.approx(under.y(), abs=1e-6)


def test_middle_drag_pans_without_painting(canvas):
    origin = canvas.map_from_image(QPointF(0, 0))
    start, end = at(canvas, 100, 100), at(canvas, 100, 100) + QPoint(30, -20)
    QTest.mousePress(canvas, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(canvas, end)
    QTest.mouseRelease(canvas, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, end)
    moved = canvas.map_from_image(QPointF(0, 0)) - origin
    assert (moved.x(), moved.y()) == (30, -20)
    assert canvas.mask() is None


def test_space_drag_pans_without_painting(canvas):
    canvas.setFocus()
    origin = canvas.map_from_image(QPointF(0, 0))
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    stroke(canvas, [(100, 100), (110, 110)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.mask() is None
    assert canvas.map_from_image(QPointF(0, 0)) != origin
    stroke(canvas, [(100, 100)])  # after release, the brush paints again
    assert canvas.has_mask()


def _drag_events(path, pos=QPointF(50, 50)):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:
        enter = QDragEnterEvent(pos, *rest)
    except TypeError:  # PySide6 < 6.12 only takes a QPoint here
        enter = QDragEnterEvent(pos.toPoint(), *rest)
    return mime, enter, QDropEvent(pos, *rest)


def test_dropping_an_image_file_emits_its_path(canvas, qtbot, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"")
    _mime, enter, drop = _drag_events(path)
    QApplication.sendEvent(canvas, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(canvas.image_dropped) as blocker:
        QApplication.sendEvent(canvas, drop)
    assert blocker.args == [str(path)]


def test_dragging_a_non_image_file_is_refused(canvas, tmp_path):
    _mime, enter, _drop = _drag_events(tmp_path / "notes.txt")
    QApplication.sendEvent(canvas, enter)
    assert not enter.isAccepted()


# ---------------------------------------------------------------------------------- toolbar
def test_toolbar_drives_and_follows_the_canvas(canvas, qtbot):
    bar = CanvasToolbar(canvas)
    qtbot.addWidget(bar)
    QTest.mouseClick(bar.eraser_button, Qt.MouseButton.LeftButton)
    assert canvas.tool() == "eraser"
    canvas.set_tool("brush")
    assert bar.brush_button.isChecked()
    canvas.set_brush_size(100)
    assert bar.size_label.text() == "100 px"
    bar.hardness_slider.setValue(25)
    assert canvas.hardness == pytest.approx(0.25)
    bar.opacity_slider.setValue(70)
    assert canvas.overlay_opacity() == pytest.approx(0.7)
    assert not bar.clear_button.isEnabled()
    QTest.mouseClick(bar.invert_button, Qt.MouseButton.LeftButton)
    assert canvas.has_mask() and bar.clear_button.isEnabled()
    QTest.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton)
    assert not canvas.has_mask()
    canvas.zoom_100()
    assert bar.zoom_label.text() == "100 %"
    assert "Ctrl+0" in bar.fit_button.toolTip() and "(B)" in bar.brush_button.toolTip()
    before = bar.color_button.icon().pixmap(16, 16).toImage()
    canvas.set_overlay(QColor(0, 0, 255))
    assert bar.color_button.icon().pixmap(16, 16).toImage() != before  # the swatch follows the colour


def test_toolbar_renders_in_a_dark_palette(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    dark = QPalette()
    for role, colour in [
        (QPalette.ColorRole.Window, QColor(37, 37, 40)),
        (QPalette.ColorRole.WindowText, QColor(220, 220, 220)),
        (QPalette.ColorRole.Button, QColor(50, 50, 54)),
        (QPalette.ColorRole.ButtonText, QColor(220, 220, 220)),
    ]:
        dark.setColor(role, colour)
    host.setPalette(dark)
    layout = QVBoxLayout(host)
    view = CanvasView()
    layout.addWidget(CanvasToolbar(view))
    layout.addWidget(view)
    host.resize(900, 500)
    host.show()
    qtbot.waitExposed(host)
    img = host.grab().toImage()
    # No light patches: the surround and the toolbar background come from the dark palette.
    assert QColor(img.pixel(3, 3)).lightness() < 80
    assert QColor(img.pixel(5, 480)).lightness() < 80


def test_canvas_package_does_not_import_torch():
    code = "import sys, studio.ui.canvas; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env={"QT_QPA_PLATFORM": "offscreen"}).returncode == 0


# ---------------------------------------------------------------------------------- pen tablets
def _pen(kind: str):
    from PySide6.QtGui import QInputDevice, QPointingDevice

    caps = QInputDevice.Capability.Position | QInputDevice.Capability.Pressure
    pointer = QPointingDevice.PointerType.Eraser if kind == "eraser" else QPointingDevice.PointerType.Pen
    return QPointingDevice(f"test {kind}", 4242, QInputDevice.DeviceType.Stylus, pointer, caps, 1, 3)


def pen_stroke(view: CanvasView, points: list[tuple[float, float, float]], kind: str = "pen") -> None:
    """Send a pen stroke as real QTabletEvents: (x, y, pressure) in image pixels."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QTabletEvent

    device = _pen(kind)
    n = len(points)
    for i, (x, y, pressure) in enumerate(points):
        kind_ = QEvent.Type.TabletPress if i == 0 else QEvent.Type.TabletMove
        pos = QPointF(at(view, x, y))
        event = QTabletEvent(kind_, device, pos, QPointF(view.mapToGlobal(pos)), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                             Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
        QApplication.sendEvent(view, event)
        assert event.isAccepted()
        if i == n - 1:
            release = QTabletEvent(QEvent.Type.TabletRelease, device, pos, QPointF(view.mapToGlobal(pos)), 0.0,
                                   0.0, 0.0, 0.0, 0.0, 0.0, Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton,
                                   Qt.MouseButton.NoButton)
            QApplication.sendEvent(view, release)


def _painted_height(mask: np.ndarray, x: int) -> int:
    return int((mask[:, x] > 0.5).sum())


def test_pen_pressure_tapers_the_stroke(canvas):
    canvas.set_brush_size(40)
    canvas.set_hardness(1.0)
    pen_stroke(canvas, [(20 + 8 * i, 100, 0.1 + 0.05 * i) for i in range(19)])  # pressing harder to the right
    m = canvas.mask()
    thin, thick = _painted_height(m, 30), _painted_height(m, 160)
    assert 3 <= thin <= 9  # 40 px at about 15 % pressure
    assert 30 <= thick <= 40
    assert canvas.undo_stack().count() == 1


def test_pressure_can_be_switched_off_and_the_mouse_ignores_it(canvas, qtbot):
    toolbar = CanvasToolbar(canvas)
    qtbot.addWidget(toolbar)
    toolbar.show()
    assert not toolbar.pressure_button.isVisible()  # no tablet on the test machine: the toggle waits for a pen
    pen_stroke(canvas, [(40, 20, 1.0)])
    assert toolbar.pressure_button.isVisible() and toolbar.pressure_button.isChecked()
    canvas.clear_mask()
    toolbar.pressure_button.click()
    assert not canvas.pressure_sizes
    canvas.set_brush_size(20)
    canvas.set_hardness(1.0)
    pen_stroke(canvas, [(40, 60, 0.1), (160, 60, 0.1)])
    stroke(canvas, [(40, 140), (160, 140)])
    m = canvas.mask()
    pen, mouse = _painted_height(m[:100], 100), _painted_height(m[100:], 100)
    assert pen == mouse and 19 <= pen <= 21, (pen, mouse)


def test_the_pens_eraser_end_erases_whatever_the_tool(canvas):
    canvas.set_brush_size(30)
    canvas.set_hardness(1.0)
    stroke(canvas, [(30, 100), (170, 100)])
    pen_stroke(canvas, [(100, 60, 1.0), (100, 140, 1.0)], kind="eraser")
    m = canvas.mask()
    assert canvas.tool() == "brush"
    assert np.all(m[90:111, 90:111] == 0) and np.all(m[90:111, 40:70] == 1)
    assert canvas.undo_stack().undoText() == "Erase mask"


# ---------------------------------------------------------------------------------- first use
def test_the_default_brush_is_a_share_of_the_image_until_the_user_picks_a_size(qtbot):
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_image(np.zeros((64, 64, 3), np.uint8), undoable=False)
    assert view.brush_size == 8  # was 48 px: most of a 64 px image
    view.set_image(np.zeros((512, 768, 3), np.uint8), undoable=False)
    assert view.brush_size == 64
    view.set_brush_size(5)
    view.set_image(np.zeros((256, 256, 3), np.uint8), undoable=False)
    assert view.brush_size == 5  # the user's choice stays


def focusable_window(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    central = QWidget()
    view = CanvasView(central)
    other = QLineEdit(central)
    row = QVBoxLayout(central)
    row.addWidget(other)
    row.addWidget(view, 1)
    window.setCentralWidget(central)
    window.resize(440, 480)
    window.show()
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    view.set_image(gradient(), undoable=False)
    view.set_zoom(2.0)
    other.setFocus()
    return window, view


def test_a_click_that_focuses_the_canvas_paints_nothing(qtbot):
    window, view = focusable_window(qtbot)
    QTest.mouseClick(view, Qt.MouseButton.LeftButton, pos=at(view, 100, 100))
    assert view.hasFocus() and view.mask() is None
    QTest.mouseClick(view, Qt.MouseButton.LeftButton, pos=at(view, 100, 100))  # now it paints
    assert view.mask() is not None and view.mask()[100, 100] > 0.5


def test_a_drag_that_focuses_the_canvas_paints_from_where_it_started(qtbot):
    window, view = focusable_window(qtbot)
    stroke(view, [(40, 40), (60, 40), (120, 40)])
    mask = view.mask()
    assert view.hasFocus() and mask is not None
    assert mask[40, 40] > 0.5 and mask[40, 120] > 0.5 and mask[120, 40] == 0


def overlay_contrast(colour) -> float:
    """How far the masked area's pixels stray from the plain image, on the canvas as drawn."""
    view = CanvasView()
    view.resize(300, 300)
    view.set_image(np.full((64, 64, 3), colour, np.uint8), undoable=False)
    view.zoom_fit()
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1
    view.set_mask(mask)
    shot = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())
    pixels = pixels[:, : shot.width() * 3].reshape(shot.height(), shot.width(), 3).astype(int)
    centre = view.map_from_image(QPointF(16, 32)).toPoint()
    patch = pixels[centre.y() - 20: centre.y() + 20, centre.x() - 20: centre.x() + 20]
    view.deleteLater()
    return float(np.abs(patch - np.array(colour)).max(axis=-1).max())


@pytest.mark.parametrize("colour", [(255, 60, 60), (220, 30, 30), (255, 255, 255), (0, 0, 0)])
def test_the_mask_overlay_shows_over_any_image(qtbot, colour):
    assert overlay_contrast(colour) >= 60  # over a red image a red tint alone differed by about 10
