"""The shipped embedded model: loads offline, generates deterministically, plugs into the engine.

Uses the weights in studio/resources/embedded/ (no training); a few steps at 32 px keep it fast.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from studio.engine.models.embedded import (  # noqa: E402
    RESOURCE_DIR,
    embedded_weights_present,
    load_embedded_model,
)

pytestmark = pytest.mark.skipif(not embedded_weights_present(), reason="embedded weights not in resources/")


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_embedded_model("cpu")


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_embedded_model(root=tmp_path)


def test_info_matches_shipped_config(model):
    cfg = json.loads((RESOURCE_DIR / "config.json").read_text())
    assert model.info.family == "embedded"
    assert model.info.latent_channels == 3
    assert model.info.latent_scale == (2 if "sr" in cfg else 1)
    assert model.info.has_classifier == ("classifier" in cfg)
    total = sum(p.stat().st_size for p in RESOURCE_DIR.glob("*.safetensors"))
    assert total < 60 * 2**20


def test_cond_and_uncond_have_matching_keys_and_shapes(model):
    cond, uncond = model.encode_prompt("red heart", "", 32, 32)
    assert cond.keys() == uncond.keys()
    for k in cond:
        assert cond[k].shape == uncond[k].shape
    assert torch.count_nonzero(uncond["text"]) == 0  # empty negative prompt = the dropped condition


@pytest.mark.parametrize(("prompt", "category"), [
    ("kitten", "Animals & Nature"), ("love", "Smileys & Emotion"), ("pizza slice", "Food & Drink"),
    ("automobile", "Travel & Places"),
])
def test_free_text_finds_the_right_category(model, prompt, category):
    assert model.nearest_emoji(prompt)[1] == category


def _run(model, seed: int, steps: int = 6, **kw):
    from studio.engine.request import GenerationRequest
    from studio.engine.runner import Runner

    w, h = model.info.default_size
    req = GenerationRequest(prompt="red heart", seed=seed, steps=steps, cfg_scale=4.0, width=w, height=h,
                            sampler="dpmpp_2m", spacing="karras", **kw)
    return Runner(model).run(req)


def test_runner_generation_is_deterministic_and_emoji_like(model):
    a, b = _run(model, 7), _run(model, 7)
    w, h = model.info.default_size
    assert a.image.shape == (h, w, 3) and a.image.dtype == np.uint8
    np.testing.assert_array_equal(a.image, b.image)
    img = a.image.astype(np.float32)
    corners = np.concatenate([img[:3, :3].reshape(-1, 3), img[-3:, -3:].reshape(-1, 3)])
    assert corners.mean() > 200  # emoji sit on a white background
    assert img.std() > 20  # ...and there is something drawn on it
    heart = img[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    assert heart[..., 0].mean() > heart[..., 1].mean() + 30  # a red heart is red


def test_other_seed_gives_another_picture(model):
    assert not np.array_equal(_run(model, 1).image, _run(model, 2).image)


def test_preview_and_encode_image_shapes(model):
    w, h = model.info.default_size
    s = model.info.latent_scale
    lat = model.encode_image(np.full((h, w, 3), 255, np.uint8))
    assert lat.shape == (1, 3, h // s, w // s)
    assert model.preview(lat).shape == (h // s, w // s, 3)


def test_classifier_grad_is_finite(model):
    grad = model.classifier_grad()
    if grad is None:
        pytest.skip("no classifier shipped")
    cond, _ = model.encode_prompt("cat", "", 32, 32)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 3
    g = grad(x, torch.tensor([3.0]), cond)
    assert g.shape == x.shape and torch.isfinite(g).all() and g.abs().sum() > 0


def test_token_states_agree_with_the_pooled_embedding():
    from studio.engine.models.text_encoder import MAX_TOKENS, shared_text_encoder

    enc = shared_text_encoder("cpu")
    texts = ["red heart", "a small grey kitten sleeping on a sofa"]
    pooled, tokens, mask = enc.encode_with_tokens(texts)
    assert tokens.shape == (2, MAX_TOKENS, 384) and mask.shape == (2, MAX_TOKENS)
    assert torch.allclose(pooled, enc.encode(texts), atol=1e-6)
    assert mask[0].sum() < mask[1].sum()  # [CLS] + words + [SEP]; padding is masked
    assert torch.count_nonzero(tokens[0][mask[0] == 0]) == 0
    mean = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(torch.nn.functional.normalize(mean, dim=-1), pooled, atol=1e-5)


def test_base_reads_token_states_when_it_attends(model):
    cond, uncond = model.encode_prompt("red heart", "", 32, 32)
    if model.base.config.token_dim:
        assert cond["token_mask"].sum() > 0 and uncond["token_mask"].sum() == 0
    else:
        assert "tokens" not in cond


def test_prompt_editing_switches_the_text_conditioning(model):
    from studio.engine.request import GenerationRequest
    from studio.engine.runner import Runner
    from tests.test_prompt_editing import record_conds

    seen = record_conds(model)
    try:
        heart, car = (model.text_cond(p)["text"] for p in ("red heart", "blue car"))
        w, h = model.info.default_size
        Runner(model).run(GenerationRequest(prompt="[red heart:blue car:0.5]", steps=4, cfg_scale=3.0, seed=1,
                                            width=w, height=h, sampler="euler"))
    finally:
        del model.denoiser  # the module's shared model gets its own method back
    assert [torch.equal(c["text"][:1], heart) for c in seen] == [True, True, False, False]
    assert all(torch.equal(c["text"][:1], car) for c in seen[2:])
