"""ControlNet preprocessors (numpy, no weights) and ControlNet units in the parameters text."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine.control_preprocess import canny, control_map
from studio.engine.request import ControlUnit, RequestError
from studio.io.controlnet_infotext import format_unit
from studio.io.parameters import parse_parameters


def _square(size: int = 48, lo: int = 12, hi: int = 36, value: int = 200) -> np.ndarray:
    image = np.zeros((size, size, 3), np.uint8)
    image[lo:hi, lo:hi] = value
    return image


def test_canny_finds_a_squares_outline_one_pixel_wide_and_nothing_else():
    edges = canny(_square())
    ys, xs = np.nonzero(edges)
    assert edges.dtype == np.uint8 and set(np.unique(edges)) == {0, 255}
    # Every edge pixel lies on the square's border (one pixel either side of it), none inside or far outside.
    near_border = (np.minimum(np.abs(ys[:, None] - [11, 12, 35, 36]).min(1), 99) <= 0) | \
                  (np.abs(xs[:, None] - [11, 12, 35, 36]).min(1) == 0)
    assert near_border.all()
    assert edges[24, 24] == 0 and edges[2, 2] == 0
    # The outline is closed: each side of the square has an edge in every row / column it spans.
    for r in range(14, 34):
        assert edges[r, 10:14].any() and edges[r, 34:38].any()
        assert edges[10:14, r].any() and edges[34:38, r].any()
    # One pixel wide: no side has two neighbouring edge columns.
    assert not (edges[20, 10:14] > 0).sum() > 1


def _step(value: int) -> np.ndarray:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, 16:] = value  # a vertical step the full height: no corners
    return image


def test_canny_thresholds_follow_opencvs_scale():
    """A step of v grey levels gives |gx| + |gy| = 4v with the 3x3 Sobel: 20 -> 80 (< 100, no edge); 40 -> 160
    (between the thresholds, joined to nothing strong: no edge); 60 -> 240 (> 200: an edge)."""
    assert canny(_step(20)).max() == 0
    assert canny(_step(40)).max() == 0
    assert canny(_step(60)).max() == 255
    assert canny(_step(40), low=50, high=100).max() == 255
    assert (canny(_step(60)) > 0).sum(axis=1).tolist() == [1] * 32  # one pixel wide, every row


def test_canny_hysteresis_keeps_weak_edges_joined_to_strong_ones():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 40  # a weak vertical step (160, between 100 and 200) ...
    image[:10, 20:] = 80  # ... joined at its top to a strong one (320)
    edges = canny(image)
    assert edges[2:8, 18:22].any() and edges[30:38, 18:22].any()  # the weak part is kept through the strong
    image[:10, 20:] = 40
    assert canny(image).max() == 0


def test_scribble_takes_dark_strokes_on_paper_or_light_strokes_on_black():
    paper = np.full((32, 32, 3), 245, np.uint8)
    paper[10:12, 4:28] = 20  # a pencil line
    dark = 255 - paper
    for drawing in (paper, dark):
        out = control_map(drawing, "scribble", 32, 32)
        assert out.dtype == np.float32 and out.shape == (32, 32, 3)
        assert out[10:12, 4:28].min() == 1.0 and out[:10].max() == 0.0 and out[12:].max() == 0.0


def test_invert_and_lineart_strokes_turn_black_lines_on_white_into_white_on_black():
    lines = np.full((16, 16, 3), 255, np.uint8)
    lines[8] = 0
    for name in ("invert", "lineart_strokes"):
        out = control_map(lines, name, 16, 16)
        assert out[8].min() == 1.0 and out[:8].max() == 0.0


def test_none_is_the_image_as_is_stretched_to_the_run_and_xdog_finds_lines():
    image = (np.arange(16 * 16 * 3).reshape(16, 16, 3) % 251).astype(np.uint8)
    np.testing.assert_array_equal(control_map(image, "none", 16, 16), image / np.float32(255))
    assert control_map(image, "none", 32, 24).shape == (24, 32, 3)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # white strokes, half of them transparent: transparent is black for "none"
    rgba[:4, :, 3] = 255
    out = control_map(rgba, "none", 8, 8)
    assert out[:4].min() == 1.0 and out[4:].max() == 0.0
    drawing = np.full((48, 48, 3), 230, np.uint8)
    drawing[20:22, 5:43] = 30
    xdog = control_map(drawing, "scribble_xdog", 48, 48)
    assert xdog[20:22, 10:38].min() == 1.0 and xdog[:10].max() == 0.0


def test_depth_and_pose_are_refused_by_the_file_they_need_and_unknown_names_listed():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(RequestError, match=r"depth_midas preprocessor needs dpt_hybrid-midas-501f0c75\.pt"):
        control_map(image, "depth_midas", 8, 8)
    with pytest.raises(RequestError, match=r"openpose preprocessor needs body_pose_model\.pth"):
        control_map(image, "openpose", 8, 8)
    with pytest.raises(RequestError, match="unknown preprocessor 'sketchy'; choose one of none, canny"):
        control_map(image, "sketchy", 8, 8)


def test_units_write_as_sd_webui_controlnet_and_read_back():
    unit = ControlUnit("control_v11p_sd15_canny", None, "canny", 0.8, 0.1, 0.6)
    value = format_unit(unit, "control_v11p_sd15_canny [d14c016b]", 512, 768)
    assert value == ("Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.8, Resize Mode: Just Resize, "
                     "Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.1, "
                     "Guidance End: 0.6, Pixel Perfect: False, Control Mode: Balanced")
    line = f'Steps: 20, Sampler: Euler, Seed: 1, ControlNet 0: "{value}"'
    parsed = parse_parameters("a cat\n" + line)
    assert parsed.request.controlnets == (ControlUnit("control_v11p_sd15_canny", None, "canny", 0.8, 0.1, 0.6),)
    assert "controlnets" in parsed.given and not parsed.notices and not parsed.unknown


def test_other_spellings_and_unusable_values_are_read_with_notices():
    text = ('a cat\nSteps: 20, Sampler: Euler, Seed: 1, '
            'ControlNet 1: "Module: invert (from white bg & black line), Model: lineart [abcdef12], Weight: 9, '
            'Guidance Start: 0.7, Guidance End: 0.2, Control Mode: ControlNet is more important", '
            'ControlNet 0: "preprocessor: depth_midas, model: control_sd15_depth [fef5e48e], weight: 0.5, '
            'starting/ending: (0.2, 0.8), resize mode: Crop and Resize, pixel perfect: False, control mode: Balanced"')
    parsed = parse_parameters(text)
    assert parsed.request.controlnets == (
        ControlUnit("control_sd15_depth", None, "none", 0.5, 0.2, 0.8),
        ControlUnit("lineart", None, "invert", 1.0, 0.0, 1.0))
    notices = " ".join(parsed.notices)
    for words in ("depth_midas' needs dpt_hybrid", "weight '9'", "start 0.7 and end 0.2",
                  "control mode 'ControlNet is"):
        assert words in notices
    # A settings line without units had none: restoring it switches the panel's off.
    base = parsed.request
    assert parse_parameters("a cat\nSteps: 20, Sampler: Euler, Seed: 1", base).request.controlnets == ()
    assert parse_parameters("just a prompt", base).request.controlnets == base.controlnets
