"""The embedded model's UNet: cross-attention to prompt tokens, and growing it from older weights."""

from __future__ import annotations

from dataclasses import replace

import torch

from studio.engine.models.unet import UNet, UNetConfig
from studio.train.diffusion import warm_start

SMALL = UNetConfig(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), cond_dim=8, groups=8)
CROSS = replace(SMALL, token_dim=12, cross_attention_levels=(1,))


def _inputs(batch: int = 2, tokens: int = 6):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 16, 16, generator=g)
    t = torch.tensor([10.0, 700.0][:batch])
    mask = torch.zeros(batch, tokens)
    mask[:, :3] = 1
    cond = {"text": torch.randn(batch, 8, generator=g), "tokens": torch.randn(batch, tokens, 12, generator=g),
            "token_mask": mask}
    return x, t, cond


def _randomise(net: torch.nn.Module) -> None:
    # zero-initialised output layers would hide every difference; give them weights
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def test_padding_tokens_are_ignored():
    net = UNet(CROSS).eval()
    _randomise(net)
    x, t, cond = _inputs()
    garbage = dict(cond, tokens=cond["tokens"].clone())
    garbage["tokens"][:, 3:] = 100.0  # behind the mask
    with torch.no_grad():
        assert torch.allclose(net(x, t, cond), net(x, t, garbage), atol=1e-5)


def test_tokens_change_the_output_and_no_tokens_means_null_only():
    net = UNet(CROSS).eval()
    _randomise(net)
    x, t, cond = _inputs()
    other = dict(cond, tokens=torch.randn_like(cond["tokens"]))
    none = dict(cond, token_mask=torch.zeros_like(cond["token_mask"]))
    without = {"text": cond["text"]}
    with torch.no_grad():
        # 100x the tolerance the identities below hold to
        assert (net(x, t, cond) - net(x, t, other)).abs().max() > 1e-3
        assert torch.allclose(net(x, t, none), net(x, t, without), atol=1e-5)


def test_warm_start_grows_cross_attention_without_changing_the_function(tmp_path):
    from safetensors.torch import save_file

    old = UNet(SMALL).eval()
    _randomise(old)
    path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in old.state_dict().items()}, str(path))
    grown = UNet(CROSS).eval()
    warm_start(grown, path)
    x, t, cond = _inputs()
    with torch.no_grad():
        assert torch.allclose(old(x, t, {"text": cond["text"]}), grown(x, t, cond), atol=1e-6)
    assert any(k.startswith("mid_cross") for k in grown.state_dict())


def test_old_configs_without_token_fields_still_load():
    d = SMALL.to_dict()
    del d["token_dim"], d["cross_attention_levels"]
    cfg = UNetConfig.from_dict(d)
    assert cfg.token_dim == 0 and cfg.cross_attention_levels == ()
    assert UNet(cfg).mid_cross is None
