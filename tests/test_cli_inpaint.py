"""--inpaint-area, --inpaint-padding and --masked-content on `python -m studio generate`."""

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.io.parameters import parse_parameters
from studio.io.png import read_parameters


@pytest.fixture
def photo(tmp_path):
    """A 128x96 photo and a mask of a small square in it, as files."""
    init = np.random.default_rng(0).integers(0, 256, (96, 128, 3)).astype(np.uint8)
    mask = np.zeros((96, 128), np.uint8)
    mask[40:52, 60:72] = 255
    Image.fromarray(init).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return init, mask, ["--model", "toy", "--prompt", "red circle", "--init", str(tmp_path / "photo.png"),
                        "--mask", str(tmp_path / "mask.png"), "--seed", "1", "--steps", "4", "--quiet"]


def test_only_masked_from_the_command_line(tmp_path, photo, capsys):
    init, mask, args = photo
    out = tmp_path / "out.png"
    assert main(["generate", *args, "--inpaint-area", "masked", "--inpaint-padding", "8",
                 "--masked-content", "latent-noise", "--out", str(out)]) == 0
    assert "(128x96," in capsys.readouterr().out
    image = np.asarray(Image.open(out))
    assert image.shape == init.shape
    np.testing.assert_array_equal(image[:30], init[:30])  # far from the mask: the photo's own pixels
    assert not np.array_equal(image[40:52, 60:72], init[40:52, 60:72])
    req = parse_parameters(read_parameters(out)).request
    # The run's size is the model's own (the toy's 32x32), not the photo's.
    assert (req.width, req.height, req.inpaint_area, req.inpaint_padding, req.masked_content) == (
        32, 32, "masked", 8, "latent_noise")
    # The parameters written reproduce it, given the same photo and mask.
    again = tmp_path / "again.png"
    assert main(["generate", "--params-from", str(out), "--model", "toy", "--init", str(tmp_path / "photo.png"),
                 "--mask", str(tmp_path / "mask.png"), "--quiet", "--out", str(again)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again)), image)


def test_masked_content_fill_and_a_typed_size(tmp_path, photo):
    _, _, args = photo
    out = tmp_path / "fill.png"
    assert main(["generate", *args, "--inpaint-area", "masked", "--width", "48", "--height", "40",
                 "--masked-content", "fill", "--out", str(out)]) == 0
    req = parse_parameters(read_parameters(out)).request
    assert (req.width, req.height, req.masked_content, req.inpaint_padding) == (48, 40, "fill", 32)


def test_whole_picture_still_needs_the_mask_at_the_run_size(tmp_path, photo, capsys):
    _, _, args = photo
    assert main(["generate", *args, "--width", "32", "--height", "32", "--out", str(tmp_path / "x.png")]) == 2
    assert "mask mask.png is 128x96, the image is 32x32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", *args, "--masked-content", "blue"])
