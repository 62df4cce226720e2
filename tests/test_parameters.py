"""PNG parameters in the AUTOMATIC1111 format: write, read back, and read other tools' files."""

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from studio.engine.request import GenerationRequest
from studio.io.parameters import format_parameters, parse_parameters
from studio.io.png import load_image, read_parameters, save_image

REQUEST = GenerationRequest(
    prompt="a red heart, glossy\nsecond line", negative_prompt="blurry, text", model="toy", sampler="euler_a",
    spacing="karras", steps=28, cfg_scale=6.5, guidance_rescale=0.7, guidance_interval=(0.28, 5.42),
    classifier_scale=1.5, seed=1234567890123, width=64, height=48)


def test_format_is_a1111_shaped():
    text = format_parameters(REQUEST, "Toy shapes")
    lines = text.split("\n")
    assert lines[0] == "a red heart, glossy" and lines[2] == "Negative prompt: blurry, text"
    assert lines[-1].startswith("Steps: 28, Sampler: Euler a, Schedule type: Karras, CFG scale: 6.5, "
                                "Seed: 1234567890123, Size: 64x48, Model: Toy shapes")


def test_round_trip_through_png(tmp_path):
    path = save_image(tmp_path / "x.png", np.zeros((48, 64, 3), np.uint8), format_parameters(REQUEST, "Toy shapes"))
    parsed = parse_parameters(read_parameters(path))
    assert parsed.request == REQUEST
    assert parsed.model_label == "Toy shapes" and parsed.unknown == {}


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_jpeg_and_webp_carry_parameters_in_exif(tmp_path, suffix):
    path = save_image(tmp_path / f"x{suffix}", np.full((16, 16, 3), 90, np.uint8), format_parameters(REQUEST))
    assert parse_parameters(read_parameters(path)).request == REQUEST


A1111_TEXT = """masterpiece, 1girl, (smile:1.2), <lora:foo:0.8>
Negative prompt: lowres, bad anatomy
Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3054741874, Size: 512x768, Model hash: 6ce0161689, \
Model: v1-5-pruned-emaonly, Denoising strength: 0.55, Clip skip: 2, Hires upscale: 2, \
Lora hashes: "foo: 1234abcd", Version: v1.6.0"""

FORGE_TEXT = """castle on a hill
Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 4.5, Seed: 7, Size: 1024x1024, Model: sdxl"""


def test_reads_automatic1111_files(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_TEXT)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    parsed = parse_parameters(read_parameters(path))
    r = parsed.request
    assert r.prompt == "masterpiece, 1girl, (smile:1.2), <lora:foo:0.8>"
    assert r.negative_prompt == "lowres, bad anatomy"
    assert (r.steps, r.sampler, r.spacing, r.cfg_scale, r.seed) == (30, "dpmpp_2m", "karras", 7.0, 3054741874)
    assert (r.width, r.height) == (512, 768)
    # With Hires upscale, AUTOMATIC1111's "Denoising strength" is the hires pass's, not img2img's.
    assert (r.hires_scale, r.hires_denoise, r.strength) == (2.0, 0.55, 1.0)
    assert parsed.model_label == "v1-5-pruned-emaonly"
    assert parsed.unknown["Lora hashes"] == "foo: 1234abcd" and r.clip_skip == 2


def test_reads_newer_schedule_type_and_no_negative():
    # A1111 1.9+'s "Automatic" is the sampler's own default: Uniform (the studio's linspace) for Euler a.
    r = parse_parameters(FORGE_TEXT).request
    assert (r.prompt, r.negative_prompt, r.sampler, r.spacing) == ("castle on a hill", "", "euler_a", "linspace")
    assert (r.width, r.height, r.cfg_scale) == (1024, 1024, 4.5)


def test_prompt_only_text_is_a_prompt():
    assert parse_parameters("just words, here").request.prompt == "just words, here"


def test_image_without_parameters(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(path)
    assert read_parameters(path) is None
    assert load_image(path)[0, 0].tolist() == [255, 255, 255]  # transparent composited on white


def test_unreadable_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png is not an image the studio can read"):
        load_image(bad)


def test_reading_parameters_does_not_load_torch():
    # The UI thread parses dropped images, and the command line reads --params-from before a model loads.
    import subprocess
    import sys

    code = "import sys, studio.io.parameters, studio.engine.request; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _png_claiming(width: int, height: int, text: str | None) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is one short row."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    head = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    extra = chunk(b"tEXt", b"parameters\0" + text.encode("latin-1")) if text else b""
    return (b"\x89PNG\r\n\x1a\n" + head + extra + chunk(b"IDAT", zlib.compress(b"\0" * 4)) + chunk(b"IEND", b""))


def test_reading_parameters_never_decodes_the_pixels(tmp_path):
    # A 10,000 x 10,000 claim: reading the text must neither decode (or try to) 100 million pixels nor warn.
    import time
    import warnings

    with_text, without = tmp_path / "with.png", tmp_path / "without.png"
    with_text.write_bytes(_png_claiming(10_000, 10_000, "cat\nSteps: 2, Sampler: Euler, Seed: 1, Size: 64x64"))
    without.write_bytes(_png_claiming(10_000, 10_000, None))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_parameters(with_text).startswith("cat\n")
        assert read_parameters(without) is None
    assert time.perf_counter() - start < 1.0


def test_settings_written_only_when_on_are_switched_off_when_absent():
    # Dynamic threshold, CFG rescale, the guidance interval, classifier scale and clip skip are written only
    # when on: an image without them was made with them off, whatever the panel holds now.
    from studio.io.parameters import OFF_WHEN_ABSENT

    on = GenerationRequest(dynamic_threshold=0.9, guidance_rescale=0.7, guidance_interval=(0.5, 5.0),
                           classifier_scale=4.0, clip_skip=2, variation_strength=0.3)
    request = parse_parameters("a cat\nSteps: 20, Seed: 3, Size: 32x32", base=on).request
    assert {name: getattr(request, name) for _, name, _ in OFF_WHEN_ABSENT} == {
        name: off for _, name, off in OFF_WHEN_ABSENT}
    # A prompt alone (no settings line) changes only the prompt.
    assert parse_parameters("just a prompt", base=on).request.dynamic_threshold == 0.9
