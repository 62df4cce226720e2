"""Tiled diffusion on the command line (--tile, --vae-tile) and in the parameters text."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.cli import main
from studio.engine.request import GenerationRequest
from studio.io.parameters import format_parameters, parse_parameters
from studio.io.png import read_parameters


def test_tile_flag_runs_tiled_writes_the_key_and_reproduces_from_the_file(tmp_path, capsys):
    out, again, plain = tmp_path / "tiled.png", tmp_path / "again.png", tmp_path / "plain.png"
    flags = ["generate", "--model", "toy", "--prompt", "red circle", "--seed", "4", "--steps", "6",
             "--width", "96", "--height", "64", "--quiet"]
    assert main(flags + ["--tile", "32", "--out", str(out)]) == 0
    text = read_parameters(out)
    assert "Tiled diffusion: 32" in text
    assert parse_parameters(text).request.tile_size == 32
    # The file gives the tile; the size is given again (the toy model fits sizes from files to its own).
    assert main(["generate", "--params-from", str(out), "--model", "toy", "--width", "96", "--height", "64",
                 "--out", str(again), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    assert main(flags + ["--out", str(plain)]) == 0
    assert "Tiled diffusion" not in read_parameters(plain)
    assert not np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(plain)))


def test_a_bad_tile_size_is_one_line_saying_what_to_choose(tmp_path, capsys):
    assert main(["generate", "--model", "toy", "--tile", "20", "--out", str(tmp_path / "x.png"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: tile_size: must be 0 (off) or a multiple of 8 pixels from 32 to 2048, got 20")


def test_tile_keys_round_trip_and_switch_off_when_absent():
    request = GenerationRequest(prompt="a cat", tile_size=512, vae_tile_size=256)
    text = format_parameters(request, "m")
    assert "Tiled diffusion: 512" in text and "VAE tile size: 256" in text
    parsed = parse_parameters(text).request
    assert (parsed.tile_size, parsed.vae_tile_size) == (512, 256)
    assert parse_parameters("a cat\nSteps: 20, Seed: 3, Size: 32x32", base=request).request.tile_size == 0


def test_the_a1111_extension_dict_is_read_in_pixels_with_a_note():
    text = ('a castle\nSteps: 20, Sampler: Euler, Seed: 1, Size: 1024x1024, Tiled Diffusion: "{\'Method\': '
            '\'Mixture of Diffusers\', \'Tile tile width\': 96, \'Tile tile height\': 64, \'Tile Overlap\': 48, '
            '\'Tile batch size\': 4}"')
    parsed = parse_parameters(text)
    assert parsed.request.tile_size == 96 * 8
    assert any("Mixture of Diffusers" in notice and "768 px" in notice for notice in parsed.notices)
    assert "Tiled Diffusion" not in parsed.unknown
