"""Palette's training (python -m studio.train palette) on a tiny dataset: the base grows into it exactly,
its batches follow the concat layout of the engine, held-out emoji are never drawn, and the command trains."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from studio.engine.models.palette_inputs import CONCAT_CHANNELS, luminance
from studio.engine.models.unet import UNet, UNetConfig
from studio.engine.schedules import make_schedule
from studio.train.__main__ import main as train_main
from studio.train.checkpoint import export_weights
from studio.train.data import sample_batch
from studio.train.palette import (
    PaletteArgs,
    held_out_loss,
    palette_batch,
    palette_config,
    random_masks,
    training_data,
    warm_start_palette,
)

TINY_BASE = UNetConfig(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), cond_dim=384, groups=8,
                       token_dim=384, cross_attention_levels=(1,))
GROUPS = 12  # groups 0 and 10 are held out


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    n, tokens = GROUPS, 32
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(
        path,
        images32=rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8),
        category=np.arange(n) % 3, group=np.arange(n), vendor=np.zeros(n, np.int64),
        caption_start=np.arange(n), caption_count=np.ones(n, np.int64),
        captions=np.array([f"caption {i}" for i in range(n)]), name=np.array([f"e{i}" for i in range(n)]),
        categories=np.array(["A", "B", "C"]),
        caption_emb=rng.standard_normal((n, 384)).astype(np.float16),
        caption_tokens=rng.standard_normal((n, tokens, 384)).astype(np.float16),
        caption_token_mask=(np.arange(tokens)[None] < 4).repeat(n, 0).astype(np.uint8),
    )
    return path


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    """A tiny base with every weight random (a fresh UNet's zero-initialised parts would hide a wrong stem)."""
    torch.manual_seed(0)
    base = UNet(TINY_BASE)
    with torch.no_grad():
        for p in base.parameters():
            p.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("base") / "base.safetensors"
    export_weights(base.state_dict(), path, torch.float32, {"kind": "base", "config": TINY_BASE.to_dict()})
    return path


def _cond(batch: int, concat: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    cond = {"text": torch.randn(batch, 384, generator=g), "tokens": torch.randn(batch, 5, 384, generator=g),
            "token_mask": torch.ones(batch, 5)}
    return cond if concat is None else {**cond, "concat": concat}


def test_the_grown_network_is_the_base_at_step_0(base_file):
    config = palette_config(base_file)
    assert config.concat_channels == CONCAT_CHANNELS and config.base_channels == TINY_BASE.base_channels
    grown = UNet(config)
    warm_start_palette(grown, base_file)
    base = UNet(TINY_BASE)
    base.load_state_dict(load_file(str(base_file)))
    g = torch.Generator().manual_seed(2)
    x, t = torch.randn(2, 3, 32, 32, generator=g), torch.tensor([100.0, 700.0])
    concat = torch.randn(2, CONCAT_CHANNELS, 32, 32, generator=g)
    with torch.no_grad():
        want = base(x, t, _cond(2))
        got = grown(x, t, _cond(2, concat))
    assert want.abs().mean() > 0.1  # a network that says something
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert grown.stem.weight[:, 3:].abs().max() == 0 and grown.stem.weight[:, :3].abs().max() > 0


def test_a_palette_file_warm_starts_as_it_is(base_file, tmp_path):
    grown = UNet(palette_config(base_file))
    with torch.no_grad():
        grown.stem.weight.normal_()
    path = tmp_path / "palette.safetensors"
    export_weights(grown.state_dict(), path, torch.float32, {"config": grown.config.to_dict()})
    again = UNet(palette_config(path))
    warm_start_palette(again, path)
    assert torch.equal(again.stem.weight, grown.stem.weight)


def test_growing_from_a_file_without_a_config_or_from_sr_weights_is_refused(tmp_path, base_file):
    bare = tmp_path / "bare.safetensors"
    export_weights(load_file(str(base_file)), bare, torch.float32, {})
    with pytest.raises(ValueError, match="does not say which network"):
        palette_config(bare)
    sr = tmp_path / "sr.safetensors"
    export_weights({}, sr, torch.float32, {"config": UNetConfig(cond_dim=0, lowres_channels=3).to_dict()})
    with pytest.raises(ValueError, match="super-resolution"):
        palette_config(sr)
    with pytest.raises(ValueError, match="not found"):
        palette_config(tmp_path / "missing.safetensors")


def test_held_out_emoji_are_never_drawn(data_path):
    data = training_data(data_path)
    drawn = sample_batch(data, 4000, torch.Generator().manual_seed(0))["idx"]
    groups = set(data.group[drawn].tolist())
    assert 0 not in groups and 10 not in groups
    assert groups == set(range(GROUPS)) - {0, 10}


def test_a_batch_holds_both_tasks_in_the_engines_layout(data_path):
    a = PaletteArgs(kind="palette", data=data_path, run=data_path.parent, export=None,
                    config=palette_config(None), batch=64)
    abar = make_schedule("cosine").alphas_cumprod
    xt, t, cond, v = palette_batch(a, training_data(data_path), torch.Generator().manual_seed(3), abar)
    ab = abar[t.long()].float()[:, None, None, None]
    x0 = ab.sqrt() * xt - (1 - ab).sqrt() * v  # v-prediction: x0 = sqrt(abar) x_t - sqrt(1 - abar) v
    known, mask, lum = cond["concat"][:, :3], cond["concat"][:, 3:4], cond["concat"][:, 4:]
    colour = lum.abs().amax((1, 2, 3)) > 0
    assert 16 < int(colour.sum()) < 48  # about half of each
    torch.testing.assert_close(lum[colour], luminance(x0[colour]), atol=1e-4, rtol=0)
    assert (mask[colour] == 1).all() and (known[colour] == 0).all()
    inp = ~colour
    assert set(mask[inp].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(known[inp], x0[inp] * (1 - mask[inp]), atol=1e-4, rtol=0)
    assert (mask[inp].mean((1, 2, 3)) < 1).any()  # real holes, not only whole pictures
    assert cond["text"].shape == (64, 384) and cond["tokens"].shape[0] == 64


def test_random_masks_are_binary_holes_of_every_kind():
    masks = random_masks(200, 32, 0.1, torch.Generator().manual_seed(0))
    assert masks.shape == (200, 1, 32, 32) and set(masks.unique().tolist()) == {0.0, 1.0}
    cover = masks.mean((1, 2, 3))
    assert (cover > 0).all()
    assert 5 <= int((cover == 1).sum()) <= 40  # the whole picture for about a tenth
    assert (cover < 0.5).sum() > 50


def test_the_command_grows_the_base_trains_and_exports(data_path, base_file, tmp_path):
    run, export = tmp_path / "run", tmp_path / "palette.safetensors"
    args = ["palette", "--data", str(data_path), "--run", str(run), "--export", str(export), "--init",
            str(base_file), "--batch", "4", "--save-every", "2", "--threads", "1", "--no-bf16", "--warmup", "1"]
    train_main(args + ["--steps", "2"])
    with safe_open(str(export), "pt") as f:
        meta = {k: json.loads(v) for k, v in f.metadata().items()}
        stem = f.get_tensor("stem.weight")
    assert meta["kind"] == "palette" and meta["step"] == 2
    assert meta["held_out_colour_loss"] > 0 and meta["held_out_inpaint_loss"] > 0  # the fixed held-out test
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any("held_out_colour_loss" in r for r in log)
    assert meta["config"]["concat_channels"] == CONCAT_CHANNELS and meta["config"]["token_dim"] == 384
    assert stem.dtype == torch.float16 and stem.shape[1] == 3 + CONCAT_CHANNELS
    assert stem[:, 3:].abs().max() > 0  # the new channels learned something


def test_the_held_out_test_scores_both_tasks_alike_at_step_0_and_apart_once_trained(data_path, base_file):
    evaluate = held_out_loss(training_data(data_path))
    grown = UNet(palette_config(base_file))
    warm_start_palette(grown, base_file)
    scores = evaluate(grown)
    assert scores["held_out_colour_loss"] == pytest.approx(scores["held_out_inpaint_loss"], rel=1e-5)
    assert evaluate(grown) == scores  # the same images, masks and noise each time
    with torch.no_grad():
        grown.stem.weight[:, 3:].normal_()  # a network that reads the known image
    moved = evaluate(grown)
    assert moved["held_out_colour_loss"] != pytest.approx(moved["held_out_inpaint_loss"], rel=1e-3)
