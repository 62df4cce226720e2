"""The training command on a tiny synthetic dataset: it trains, exports, resumes, and warm-starts."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from studio.engine.models.unet import UNetConfig
from studio.train.diffusion import DiffusionArgs, train

TINY = UNetConfig(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), cond_dim=384, groups=8)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    n, captions, tokens = 6, 9, 32
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(
        path,
        images32=rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8),
        images64=rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8),
        category=np.arange(n) % 3, group=np.arange(n), vendor=np.zeros(n, np.int64),
        caption_start=np.array([0, 2, 3, 5, 6, 8]), caption_count=np.array([2, 1, 2, 1, 2, 1]),
        captions=np.array([f"caption {i}" for i in range(captions)]), name=np.array([f"e{i}" for i in range(n)]),
        categories=np.array(["A", "B", "C"]),
        caption_emb=rng.standard_normal((captions, 384)).astype(np.float16),
        caption_tokens=rng.standard_normal((captions, tokens, 384)).astype(np.float16),
        caption_token_mask=(np.arange(tokens)[None] < 4).repeat(captions, 0).astype(np.uint8),
    )
    return path


def _args(data_path, run, config, **kw) -> DiffusionArgs:
    return DiffusionArgs(kind="base", data=data_path, run=run, export=run / "base.safetensors", config=config,
                         batch=4, warmup=2, save_every=2, log_every=1, bf16=False, threads=1, **kw)


def test_train_exports_and_resumes(data_path, tmp_path):
    run = tmp_path / "run"
    train(_args(data_path, run, TINY, steps=2))
    first = load_file(str(run / "base.safetensors"))
    train(_args(data_path, run, TINY, steps=4))  # same command again continues from step 2
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) for r in log)
    second = load_file(str(run / "base.safetensors"))
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_cross_attention_run_warm_starts_from_a_pooled_only_run(data_path, tmp_path, capsys):
    train(_args(data_path, tmp_path / "old", TINY, steps=2))
    grown = replace(TINY, token_dim=384, cross_attention_levels=(1,))
    new = tmp_path / "new"
    train(_args(data_path, new, grown, steps=2, init=tmp_path / "old" / "checkpoint.pt", lr_decay_minutes=1.0))
    assert "tensors copied" in capsys.readouterr().out
    weights = load_file(str(new / "base.safetensors"))
    assert any(k.startswith("mid_cross") for k in weights)


def test_cross_attention_needs_token_states(tmp_path):
    path = tmp_path / "pooled_only.npz"
    rng = np.random.default_rng(0)
    np.savez(path, images32=np.zeros((2, 32, 32, 3), np.uint8), category=np.zeros(2, np.int64),
             group=np.arange(2), caption_start=np.arange(2), caption_count=np.ones(2, np.int64),
             categories=np.array(["A"]), caption_emb=rng.standard_normal((2, 384)).astype(np.float16))
    grown = replace(TINY, token_dim=384, cross_attention_levels=(1,))
    with pytest.raises(ValueError, match="dataset tokens"):
        train(_args(path, tmp_path / "run", grown, steps=1))


def test_the_sample_grid_tool_asks_where_to_write_instead_of_a_checkout_path(capsys):
    from studio.train import sample_grid

    with pytest.raises(SystemExit) as ended:
        sample_grid.main([])
    assert ended.value.code == 2 and "--out" in capsys.readouterr().err
