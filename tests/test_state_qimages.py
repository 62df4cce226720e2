"""numpy <-> QImage, the one module the canvas, history, thumbnails, clipboard and paste share."""

import numpy as np
import pytest
from PySide6.QtGui import QImage

from studio.state.qimages import from_qimage, rgb_owned, rgb_view, to_qimage, to_rgb_uint8


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)  # odd width: padded rows


def test_owned_copies_round_trip(rgb):
    image = to_qimage(rgb)
    rgb[:] = 0  # the QImage keeps its own pixels
    assert image.format() == QImage.Format.Format_RGB888
    assert np.array_equal(from_qimage(image), np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8))


def test_alpha_greyscale_and_float_images_become_rgb(rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    assert np.array_equal(from_qimage(to_qimage(rgba)), rgb)
    assert np.array_equal(from_qimage(to_qimage(rgb[..., 0])), np.repeat(rgb[..., :1], 3, axis=2))
    assert np.array_equal(to_rgb_uint8(np.array([[[0.0, 0.5, 1.0]]])), [[[0, 128, 255]]])
    with pytest.raises(ValueError, match="HxWx3"):
        to_rgb_uint8(np.zeros((4, 4, 2), np.uint8))


def test_a_view_reads_in_place_and_an_owned_rgb32_does_not(rgb):
    pixels = to_rgb_uint8(rgb)
    before = tuple(int(v) for v in pixels[0, 0])
    view, owned = rgb_view(pixels), rgb_owned(pixels)
    pixels[0, 0] = (1, 2, 3)
    assert view.pixelColor(0, 0).getRgb()[:3] == (1, 2, 3)
    assert owned.format() == QImage.Format.Format_RGB32
    assert owned.pixelColor(0, 0).getRgb()[:3] == before != (1, 2, 3)
