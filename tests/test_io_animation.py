"""A run saved as an animated GIF or WebP: studio.io does it with Pillow alone (test_layering: no Qt)."""

import numpy as np
import pytest
from PIL import Image

from studio.io.animation import FRAME_MS, LAST_FRAME_MS, MIN_SIDE, save_animation


def frames(n: int, side: int) -> list[np.ndarray]:
    return [np.full((side, side, 3), 20 * k, np.uint8) for k in range(n)]


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_every_step_then_the_result_held_longer(tmp_path, suffix):
    result = np.full((64, 64, 3), 250, np.uint8)
    path = save_animation(tmp_path / f"run{suffix}", frames(4, 32), result)
    with Image.open(path) as animation:
        assert animation.n_frames == 5 and animation.size == (MIN_SIDE, MIN_SIDE)  # 32 px previews grow too
        durations = []
        for k in range(animation.n_frames):
            animation.seek(k)
            durations.append(animation.info.get("duration"))
        if suffix == ".gif":  # Pillow's WebP reader does not report per-frame durations
            assert durations == [FRAME_MS] * 4 + [LAST_FRAME_MS]
        assert np.asarray(animation.convert("RGB"))[0, 0].tolist() == [250, 250, 250]


def test_a_name_without_suffix_becomes_a_gif(tmp_path):
    assert save_animation(tmp_path / "run", frames(2, 8)).name == "run.gif"


def test_refusals_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif or \.webp"):
        save_animation(tmp_path / "run.png", frames(2, 8))
    with pytest.raises(ValueError, match="generate an image first"):
        save_animation(tmp_path / "run.gif", [])

