"""Hires fix in the parameters text (AUTOMATIC1111's keys, written and read back) and on the command line."""

import numpy as np
from PIL import Image

from studio.cli import main
from studio.engine.request import GenerationRequest
from studio.io.parameters import format_parameters, parse_parameters
from studio.io.png import read_parameters

# What AUTOMATIC1111 1.10 writes for a txt2img run with hires fix.
A1111 = ("a castle on a hill\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, "
         "CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
         "Denoising strength: 0.45, Hires upscale: 2, Hires steps: 12, Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1")


def test_automatic1111s_hires_keys_are_read():
    parsed = parse_parameters(A1111, GenerationRequest(strength=0.9))
    r = parsed.request
    assert (r.hires_scale, r.hires_steps, r.hires_upscaler, r.hires_denoise) == (2.0, 12, "R-ESRGAN 4x+", 0.45)
    assert r.hires and r.strength == 0.9  # "Denoising strength" is the hires pass's here, not img2img's
    assert not parsed.notices and "Hires upscale" not in parsed.unknown


def test_written_and_read_back():
    request = GenerationRequest(prompt="red circle", seed=3, hires_scale=1.5, hires_steps=0, hires_upscaler="Lanczos",
                                hires_denoise=0.55)
    text = format_parameters(request)
    assert "Denoising strength: 0.55, Hires upscale: 1.5, Hires upscaler: Lanczos" in text
    assert "Hires steps" not in text  # 0 (as many as Steps) is not written, as in AUTOMATIC1111
    back = parse_parameters(text, GenerationRequest(hires_steps=9)).request
    assert (back.hires_scale, back.hires_steps, back.hires_upscaler, back.hires_denoise) == (1.5, 0, "Lanczos", 0.55)
    assert "Hires" not in format_parameters(request.with_changes(hires_scale=0.0))


def test_a_line_without_hires_keys_switches_it_off_and_keeps_img2img_strength():
    base = GenerationRequest(hires_scale=2.0, hires_denoise=0.3)
    r = parse_parameters("a cat\nSteps: 20, Sampler: Euler, Seed: 1, Denoising strength: 0.6", base).request
    assert r.hires_scale == 0.0 and r.strength == 0.6 and r.hires_denoise == 0.3


def test_hires_resize_becomes_a_factor_and_out_of_range_values_are_noted():
    parsed = parse_parameters("a cat\nSteps: 20, Seed: 1, Size: 512x768, Denoising strength: 0.5, "
                              "Hires resize: 1024x1536, Hires upscaler: Latent")
    assert parsed.request.hires_scale == 2.0 and any("Hires resize" in n for n in parsed.notices)
    parsed = parse_parameters("a cat\nSteps: 20, Seed: 1, Hires upscale: 9, Hires steps: -3, Hires upscaler: Latent")
    assert (parsed.request.hires_scale, parsed.request.hires_steps) == (4.0, 0) and len(parsed.notices) == 2


def test_cli_writes_the_hires_keys_and_the_larger_image(tmp_path, capsys):
    out = tmp_path / "hires.png"
    assert main(["generate", "--model", "toy", "--prompt", "red circle", "--seed", "3", "--steps", "6",
                 "--width", "32", "--height", "32", "--hires-scale", "2", "--hires-steps", "4",
                 "--hires-upscaler", "latent", "--denoise", "0.5", "--out", str(out), "--quiet"]) == 0
    assert "64x64" in capsys.readouterr().out
    text = read_parameters(out)
    assert "Size: 32x32" in text and "Denoising strength: 0.5, Hires upscale: 2, Hires steps: 4, " \
                                     "Hires upscaler: Latent" in text
    again = tmp_path / "again.png"  # the file's settings reproduce the picture
    assert main(["generate", "--params-from", str(out), "--model", "toy", "--out", str(again), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    plain = tmp_path / "plain.png"  # a flag given overrides the file: hires fix off
    assert main(["generate", "--params-from", str(out), "--model", "toy", "--hires-scale", "0", "--out", str(plain),
                 "--quiet"]) == 0
    assert Image.open(plain).size == (32, 32) and "Hires" not in read_parameters(plain)


def test_cli_refuses_denoise_without_hires_and_names_a_bad_upscaler(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["generate", "--model", "toy", "--denoise", "0.5", "--out", out, "--quiet"]) == 2
    assert "--strength for img2img" in capsys.readouterr().err
    assert main(["generate", "--model", "toy", "--width", "32", "--height", "32", "--steps", "2", "--hires-scale", "2",
                 "--hires-upscaler", "nope-4x", "--out", out, "--quiet"]) == 2
    assert "nope-4x" in capsys.readouterr().err
    init = tmp_path / "init.png"  # img2img keeps working, with its own --strength
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(init)
    assert main(["generate", "--model", "toy", "--init", str(init), "--strength", "0.5", "--steps", "4",
                 "--out", out, "--quiet"]) == 0
    assert "Denoising strength: 0.5" in read_parameters(tmp_path / "x.png")
