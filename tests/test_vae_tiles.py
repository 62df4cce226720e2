"""Tiled VAE encoding and decoding (models/vae_tiles.py, through VaeCodec) on a tiny random SD VAE."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
import torch  # noqa: E402

from studio.engine.models.sd.testing import build_random  # noqa: E402
from studio.engine.models.vae_codec import VaeCodec  # noqa: E402
from studio.engine.models.vae_tiles import tiled_decode  # noqa: E402
from studio.engine.tiling import feather, grid, spans  # noqa: E402


@pytest.fixture(scope="module")
def codec() -> VaeCodec:
    return VaeCodec(build_random("sd1").vae, torch.device("cpu"), torch.float32)


def smooth_latent(side: int = 32) -> torch.Tensor:
    """A latent with large smooth shapes and a left-to-right ramp, as a decoded picture has."""
    gen = torch.Generator().manual_seed(3)
    blobs = torch.nn.functional.interpolate(torch.randn(1, 4, 4, 4, generator=gen), size=(side, side), mode="bicubic")
    return blobs + torch.linspace(-2, 2, side)[None, None, None, :]


def column_steps(image: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring columns (a seam shows as a peak)."""
    return np.abs(np.diff(image.astype(np.float64), axis=1)).mean(axis=(0, 2))


def test_spans_cover_the_side_with_at_least_the_overlap():
    for length, tile, overlap in [(100, 32, 8), (64, 16, 4), (17, 16, 4), (48, 16, 0), (10, 16, 4)]:
        s = spans(length, tile, overlap)
        assert s[0][0] == 0 and s[-1][1] == length
        assert all(end - start == min(tile, length) for start, end in s)
        assert all(a_end - b_start >= overlap for (_, a_end), (b_start, _) in zip(s, s[1:], strict=False))


def test_feather_weights_sum_to_a_positive_cover_and_one_tile_weighs_exactly_one():
    tiles = grid(40, 56, 16, 4)
    total = torch.zeros(40, 56, dtype=torch.float64)
    for t in tiles:
        total[t.rows, t.cols] += feather(t, tiles)
    assert total.min() > 0.05
    (only,) = grid(12, 20, 32, 8)
    assert torch.equal(feather(only, [only]), torch.ones(12, 20, dtype=torch.float64))


def test_one_tile_covering_the_image_decodes_and_encodes_exactly_as_untiled(codec):
    z = smooth_latent(16)
    image = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    codec.tile_size = 0
    whole, whole_latent = codec.decode(z), codec.encode_image(image)
    codec.tile_size = 128
    try:
        assert np.array_equal(codec.decode(z), whole)
        assert torch.equal(codec.encode_image(image), whole_latent)
    finally:
        codec.tile_size = 0


def test_tile_size_setting_decodes_in_overlapping_tiles(codec, monkeypatch):
    calls = []
    decode = codec.vae.decode
    monkeypatch.setattr(codec.vae, "decode", lambda z, **kw: calls.append(tuple(z.shape[-2:])) or decode(z, **kw))
    codec.tile_size = 128  # 16 latent cells
    try:
        image = codec.decode(smooth_latent(32))
    finally:
        codec.tile_size = 0
    assert image.shape == (256, 256, 3)
    # One statistics pass on the picture shrunk to a tile, then 3 x 3 tiles of 16 cells (overlapping by >= 4).
    assert calls == [(16, 16)] + [(16, 16)] * 9


def test_large_images_tile_automatically(codec):
    assert codec._tile_latents(2048 * 2048) == 512 // 8
    assert codec._tile_latents(1024 * 1024) == 0
    codec.tile_size = 256
    try:
        assert codec._tile_latents(1024 * 1024) == 32
    finally:
        codec.tile_size = 0


def test_shared_group_norm_statistics_beat_per_tile_statistics(codec):
    """diffusers' tiled_decode normalises every tile by its own statistics; the codec's shared ones are closer to
    the untiled decode (docs/tiles.md has the figures) and leave no seam step larger than the picture's own."""
    z = smooth_latent(48)
    vae = codec.vae
    with torch.no_grad():
        whole = vae.decode(z, return_dict=False)[0]
        mine = tiled_decode(lambda t: vae.decode(t, return_dict=False)[0], vae.decoder, z, 16, 8)
        vae.enable_tiling()
        vae.tile_latent_min_size, vae.tile_sample_min_size = 16, 128
        try:
            theirs = vae.tiled_decode(z, return_dict=False)[0]
        finally:
            vae.disable_tiling()

    def to8(x: torch.Tensor) -> np.ndarray:
        return ((x[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()

    w, m, t = to8(whole), to8(mine), to8(theirs)
    assert np.abs(m - w).mean() < 0.6 * np.abs(t - w).mean()
    excess_mine = (column_steps(m) - column_steps(w)).max()
    excess_theirs = (column_steps(t) - column_steps(w)).max()
    assert excess_mine < 0.3 * excess_theirs


def test_tiled_encode_approaches_the_untiled_encode_as_tiles_grow(codec):
    ramp = np.linspace(0, 255, 256)
    image = np.stack([np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)), np.full((256, 256), 90.0)], -1)
    image = image.astype(np.uint8)
    whole = codec.encode_image(image)
    errors = []
    try:
        for tile in (128, 192):
            codec.tile_size = tile
            tiled = codec.encode_image(image)
            assert tiled.shape == whole.shape
            errors.append(float((tiled - whole).abs().mean() / whole.abs().mean()))
    finally:
        codec.tile_size = 0
    # A random tiny encoder sees far around each pixel, so 128 px tiles differ by ~40 % of the latent's size.
    assert errors[0] < 0.5 and errors[1] < 0.6 * errors[0]
