"""The emoji colouriser and emoji inpainting in the real window: picked from the model list, a grey picture
dropped onto the canvas (or a mask painted), Generate, through the engine thread, on tiny random Palette weights."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from studio.engine.models import palette as palette_module
from studio.engine.models.embedded import embedded_weights_present
from studio.state.jobs import JobResult
from studio.state.paths import StudioPaths

pytestmark = pytest.mark.skipif(not embedded_weights_present(), reason="embedded weights not in resources/")

from palette_files import tiny_palette_root  # noqa: E402

TIMEOUT = 60_000


@pytest.fixture
def studio(qtbot, tmp_path, monkeypatch):
    from studio.app import create_studio

    monkeypatch.setattr(palette_module, "RESOURCE_DIR", tiny_palette_root(tmp_path / "resources"))
    studio = create_studio(StudioPaths.under(tmp_path / "home"))
    qtbot.addWidget(studio.window)
    studio.window.show()
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(model="toy"))
    studio.start_engine()
    qtbot.waitUntil(lambda: studio.window.status.engine_label.text().startswith("Ready")
                    and panel.model.findData("emoji-colouriser") >= 0, timeout=TIMEOUT)
    yield studio
    studio.controller.shutdown()


def pick(studio, qtbot, key: str) -> None:
    """Choose ``key`` in the model list as a user does, and wait for its recommended settings."""
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(strength=0.5, steps=9))
    panel.model.setCurrentIndex(panel.model.findData(key))
    qtbot.waitUntil(lambda: panel.values().steps == 20 and panel.values().strength == 1.0, timeout=TIMEOUT)
    panel.set_values(panel.values().with_changes(steps=3, seed=5, seed_mode="fixed"))


def generate(studio, qtbot):
    jobs = []
    studio.controller.queue.changed.connect(lambda: jobs.append(studio.controller.queue.running))
    with qtbot.waitSignal(studio.controller.job_settled, timeout=TIMEOUT) as blocker:
        studio.controller.generate()
    return next(j for j in jobs if j is not None), blocker.args[0]


def luma(image: np.ndarray) -> np.ndarray:
    return image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def test_a_dropped_grey_picture_is_coloured(studio, qtbot, tmp_path):
    window = studio.window
    assert window.panel.model.itemText(window.panel.model.findData("emoji-colouriser")).startswith("Emoji colouriser")
    pick(studio, qtbot, "emoji-colouriser")
    yy, xx = np.mgrid[:64, :64]
    grey = np.where(((yy - 32) ** 2 + (xx - 32) ** 2 < 400)[..., None], 90, 230).astype(np.uint8).repeat(3, 2)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "grey.png"))])
    window.canvas.dropEvent(QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                       Qt.KeyboardModifier.NoModifier))
    assert np.array_equal(window.canvas.image()[..., :3], grey)
    job, result = generate(studio, qtbot)
    assert job.init_image is not None and job.values.strength == 1.0  # the picture went with the job
    assert isinstance(result, JobResult), window.banner.text()
    assert result.image.shape == (64, 64, 3) and np.abs(luma(result.image) - luma(grey)).max() <= 0.51
    assert np.abs(result.image.astype(int) - grey).max() > 10  # colour, not the grey picture back
    assert "Emoji colouriser" in result.parameters


def test_a_painted_mask_is_inpainted_and_the_rest_kept(studio, qtbot):
    window = studio.window
    pick(studio, qtbot, "emoji-inpainting")
    studio.window.panel.set_values(studio.window.panel.values().with_changes(mask_feather=0))  # a sharp edge
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[:, :, 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None]
    window.canvas.set_image(picture)
    window.canvas.zoom_fit()
    window.canvas.set_brush_size(6)
    with qtbot.waitSignal(window.canvas.mask_changed, timeout=TIMEOUT):
        centre = window.canvas.rect().center()
        QTest.mousePress(window.canvas, Qt.MouseButton.LeftButton, pos=centre)
        QTest.mouseMove(window.canvas, centre + QPoint(30, 0))
        QTest.mouseRelease(window.canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(30, 0))
    job, result = generate(studio, qtbot)
    assert job.mask is not None and job.init_image is not None
    assert isinstance(result, JobResult), window.banner.text()
    # (no super-resolution stage beside these weights: the model's size is 32 px, the picture fitted to it)
    known, outside = job.init_image, job.mask == 0
    assert outside.any() and np.array_equal(result.image[outside], known[outside])
    assert not np.array_equal(result.image[job.mask >= 0.5], known[job.mask >= 0.5])
