"""image <-> unit tensors, which every pixel-space model's previews and final images go through."""

import numpy as np
import torch

from studio.engine.models.base import image_to_unit, unit_to_image


def test_round_trip_is_exact():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(unit_to_image(image_to_unit(image)), image)


def test_rounds_to_nearest_and_clamps():
    values = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.3, 1.0, 3.0, float("inf")])  # 89.25 -> 89, 165.75 -> 166
    out = unit_to_image(values.view(1, 1, 1, -1).expand(1, 3, 1, -1))
    assert out.shape == (1, 8, 3) and out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 0, 89, 128, 166, 255, 255, 255]


def test_takes_half_precision_and_tensors_that_need_grad():
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = unit_to_image(x)
    for dtype in (torch.float16, torch.bfloat16):
        assert np.abs(unit_to_image(x.to(dtype)).astype(int) - reference).max() <= 1
    assert np.array_equal(unit_to_image(x.clone().requires_grad_()), reference)
