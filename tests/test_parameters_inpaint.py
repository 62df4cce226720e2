"""Inpaint area, masked area padding and masked content in the parameters text, as AUTOMATIC1111 writes them."""

import numpy as np
import pytest

from studio.engine.request import GenerationRequest
from studio.io.parameters import format_parameters, parse_parameters

MASK = np.ones((64, 64), np.float32)
INIT = np.zeros((64, 64, 3), np.uint8)


def masked(**kw) -> GenerationRequest:
    return GenerationRequest(prompt="a cat", seed=3, width=64, height=64, init_image=INIT, mask=MASK,
                             mask_feather=4, **kw)


def test_written_as_a1111_writes_them_and_read_back():
    req = masked(inpaint_area="masked", inpaint_padding=48, masked_content="fill")
    text = format_parameters(req)
    assert "Mask blur: 4, Inpaint area: Only masked, Masked area padding: 48, Masked content: fill" in text
    back = parse_parameters(text).request
    assert (back.inpaint_area, back.inpaint_padding, back.masked_content) == ("masked", 48, "fill")
    for content, written in (("latent_noise", "latent noise"), ("latent_nothing", "latent nothing")):
        text = format_parameters(masked(masked_content=content))
        assert f"Masked content: {written}" in text and "Inpaint area" not in text
        assert parse_parameters(text).request.masked_content == content


def test_defaults_and_runs_without_a_mask_write_nothing():
    for req in (masked(), GenerationRequest(inpaint_area="masked", masked_content="fill")):
        text = format_parameters(req)
        assert "Inpaint area" not in text and "Masked content" not in text and "padding" not in text


def test_an_a1111_line_sets_them():
    line = ("a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Denoising strength: 0.75, "
            "Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32, Masked content: latent noise")
    parsed = parse_parameters(line)
    req = parsed.request
    assert (req.inpaint_area, req.inpaint_padding, req.masked_content) == ("masked", 32, "latent_noise")
    assert not parsed.unknown and not parsed.notices


def test_a_masked_run_without_them_had_the_defaults_and_other_lines_keep_the_panel():
    base = GenerationRequest(inpaint_area="masked", inpaint_padding=64, masked_content="fill")
    masked_line = "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512, Mask blur: 4"
    req = parse_parameters(masked_line, base).request
    assert (req.inpaint_area, req.inpaint_padding, req.masked_content) == ("whole", 64, "original")
    txt2img = "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512"
    req = parse_parameters(txt2img, base).request
    assert (req.inpaint_area, req.inpaint_padding, req.masked_content) == ("masked", 64, "fill")


@pytest.mark.parametrize("pair, field, notice", [
    ("Inpaint area: Everywhere", "inpaint_area", "Inpaint area 'Everywhere' is not one of Whole picture, Only "
                                                 "masked: kept Whole picture."),
    ("Masked content: blue", "masked_content", "Masked content 'blue' is not one of original, fill, latent noise, "
                                               "latent nothing: kept original."),
    ("Masked area padding: 5000", "inpaint_padding", "Masked area padding 5000 is more than 1024: set to 1024."),
])
def test_values_it_cannot_use_are_named(pair, field, notice):
    parsed = parse_parameters(f"a cat\nSteps: 20, Sampler: Euler, Seed: 1, Mask blur: 4, {pair}")
    assert (field, notice) in parsed.adapted
