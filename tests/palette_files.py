"""A tiny random Palette model on disk, beside copies of the embedded model's shared files, for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from studio.engine.models.embedded import RESOURCE_DIR
from studio.engine.models.palette_inputs import CONCAT_CHANNELS
from studio.engine.models.unet import UNet, UNetConfig
from studio.train.checkpoint import export_weights

TINY_PALETTE = UNetConfig(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), cond_dim=384, groups=8,
                          token_dim=384, cross_attention_levels=(1,), concat_channels=CONCAT_CHANNELS)
SHARED = ("config.json", "emoji_index.safetensors", "emoji_names.json")


def tiny_palette_root(folder: Path, sr: bool = False, seed: int = 0) -> Path:
    """``folder`` as the embedded resources with tiny random Palette weights (and the shipped SR stage if ``sr``).

    Every weight is drawn at random, the zero-initialised ones too, so the network's output depends on its input.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in SHARED + (("sr.safetensors",) if sr else ()):
        shutil.copyfile(RESOURCE_DIR / name, folder / name)
    torch.manual_seed(seed)
    net = UNet(TINY_PALETTE)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    export_weights(net.state_dict(), folder / "palette.safetensors", torch.float16,
                   {"kind": "palette", "config": TINY_PALETTE.to_dict()})
    return folder
