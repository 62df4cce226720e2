"""A small convolutional classifier over emoji categories, optionally aware of the noise level.

The noisy variant (Dhariwal & Nichol 2021) sees x_t = sqrt(abar) x0 + sqrt(1 - abar) eps
and the timestep t, and feeds the engine's classifier-guidance hook. The same
network with ``timestep=False`` is the clean-image judge used to score samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .unet import ResBlock, timestep_embedding


@dataclass(frozen=True)
class ClassifierConfig:
    num_classes: int = 9
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4)
    timestep: bool = True  # False: a clean-image classifier (t is ignored)
    emb_dim: int = 128
    groups: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        d = dict(d)
        d["channel_mults"] = tuple(d["channel_mults"])
        return cls(**d)


class Classifier(nn.Module):
    """(x [B, 3, H, W] in the VP scale, t [B]) -> logits [B, num_classes]."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = cfg = config
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, cfg.emb_dim), nn.SiLU(), nn.Linear(cfg.emb_dim, cfg.emb_dim))
        self.stem = nn.Conv2d(3, cfg.base_channels, 3, padding=1)
        blocks: list[nn.Module] = []
        ch = cfg.base_channels
        for i, m in enumerate(cfg.channel_mults):
            blocks.append(ResBlock(ch, cfg.base_channels * m, cfg.emb_dim, cfg.groups))
            ch = cfg.base_channels * m
            blocks.append(ResBlock(ch, ch, cfg.emb_dim, cfg.groups))
            if i < len(cfg.channel_mults) - 1:
                blocks.append(nn.AvgPool2d(2))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.GroupNorm(cfg.groups, ch)
        self.head = nn.Linear(ch, cfg.num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        if t is None or not self.config.timestep:
            t = x.new_zeros(x.shape[0])
        emb = F.silu(self.time_mlp(timestep_embedding(t, self.config.base_channels)))
        h = self.stem(x)
        for b in self.blocks:
            h = b(h, emb) if isinstance(b, ResBlock) else b(h)
        return self.head(F.silu(self.norm(h)).mean(dim=(2, 3)))
