"""A small pixel-space UNet for the embedded model (base 32 px, super-resolution 64 px).

Conditioning: one vector per image (a pooled sentence embedding, and for
super-resolution the noise-augmentation level) is added to the time embedding
and injected as a scale and shift after each block's norm (FiLM, improved DDPM's
"scale-shift norm"). Optionally the prompt's token states also enter through
cross-attention at the low resolutions (as in latent diffusion and Imagen). With
the pooled vector alone the prompt had a weak voice (held-out judge 42% at CFG 3);
growing cross-attention at 8x8 and training on took it to 59% (MODEL_CARD.md).
A learned null token is always attendable, so a prompt with no tokens (the
unconditional branch) is well defined.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 3)
    blocks_per_level: int = 2
    attention_levels: tuple[int, ...] = (2,)  # level indices (0 = full resolution) with self-attention
    cond_dim: int = 384  # sentence-embedding size; 0 for an unconditional network
    lowres_channels: int = 0  # 3 for super-resolution: the upsampled low-res image is concatenated
    emb_dim: int = 256
    groups: int = 16
    token_dim: int = 0  # size of the prompt's token states for cross-attention; 0 for none
    cross_attention_levels: tuple[int, ...] = ()  # levels (and the middle, when any) with cross-attention
    # Palette (Saharia et al. 2022): channels of a known image joined to the input (cond["concat"]), with no
    # noise-level embedding (unlike lowres_channels), so a model grown from a base is the base at step 0.
    concat_channels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        d = dict(d)
        for k in ("channel_mults", "attention_levels", "cross_attention_levels"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    @classmethod
    def stored_in(cls, path: str | Path) -> UNetConfig | None:
        """The network a .safetensors file of the studio's training says it holds (its ``config`` metadata),
        None when it says nothing; ValueError for a file that is damaged or not safetensors."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "pt") as f:
                text = (f.metadata() or {}).get("config")
        except SafetensorError as exc:
            raise ValueError(f"{path} is damaged or not a safetensors file ({exc})") from exc
        return cls.from_dict(json.loads(text)) if text else None


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of a continuous timestep [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as identity: stabler early training
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, ch: int, groups: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        o = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(o.transpose(-1, -2).reshape(b, c, h, w))


class CrossAttention(nn.Module):
    """Image positions attend to the prompt's tokens; starts as identity (zero output projection)."""

    def __init__(self, ch: int, context_dim: int, groups: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.kv = nn.Linear(context_dim, 2 * ch)
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.heads = heads

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W]; context [B, L, D]; mask bool [B, L], True where a token may be attended."""
        b, c, h, w = x.shape
        d = c // self.heads
        q = self.q(self.norm(x)).reshape(b, self.heads, d, h * w).transpose(-1, -2)
        k, v = self.kv(context).reshape(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask[:, None, None, :])
        return x + self.out(o.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """network(x_t, t, cond) -> prediction, the engine's discrete-time Network contract.

    cond keys: "text" [B, cond_dim] (zeros mean unconditional); with cross-attention
    "tokens" [B, L, token_dim] and "token_mask" [B, L] (1 for a real token, 0 for
    padding; all zeros mean unconditional); and for super-resolution "lowres"
    [B, 3, H, W] (already upsampled) and "noise_level" [B] (the timestep used to
    noise the low-res image, Ho et al. 2021's augmentation); for an image-to-image
    (Palette) network "concat" [B or 1, concat_channels, H, W], the known image.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        e = cfg.emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(cfg.base_channels, e), nn.SiLU(), nn.Linear(e, e))
        self.cond_mlp = (
            nn.Sequential(nn.Linear(cfg.cond_dim, e), nn.SiLU(), nn.Linear(e, e)) if cfg.cond_dim else None
        )
        self.aug_mlp = (
            nn.Sequential(nn.Linear(cfg.base_channels, e), nn.SiLU(), nn.Linear(e, e))
            if cfg.lowres_channels
            else None
        )
        cross = set(cfg.cross_attention_levels) if cfg.token_dim else set()
        if cross:
            self.context_norm = nn.LayerNorm(cfg.token_dim)
            self.null_token = nn.Parameter(torch.zeros(1, 1, cfg.token_dim))
        self.stem = nn.Conv2d(cfg.in_channels + cfg.lowres_channels + cfg.concat_channels, cfg.base_channels, 3,
                              padding=1)
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        self.down = nn.ModuleList()
        skips = [cfg.base_channels]
        ch = cfg.base_channels
        for level, cout in enumerate(chans):
            for _ in range(cfg.blocks_per_level):
                self.down.append(self._level_blocks(ch, cout, level, cross))
                ch = cout
                skips.append(ch)
            if level < len(chans) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, e, cfg.groups)
        self.mid_attn = Attention(ch, cfg.groups)
        self.mid_cross = CrossAttention(ch, cfg.token_dim, cfg.groups) if cross else None
        self.mid2 = ResBlock(ch, ch, e, cfg.groups)
        self.up = nn.ModuleList()
        for level in reversed(range(len(chans))):
            cout = chans[level]
            for _ in range(cfg.blocks_per_level + 1):
                self.up.append(self._level_blocks(ch + skips.pop(), cout, level, cross))
                ch = cout
            if level > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(ch, ch, 3, padding=1)]))
        self.out_norm = nn.GroupNorm(cfg.groups, ch)
        self.out = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _level_blocks(self, cin: int, cout: int, level: int, cross: set[int]) -> nn.ModuleList:
        """A residual block, then self- and cross-attention where the config asks for them at this level."""
        cfg = self.config
        blocks = [ResBlock(cin, cout, cfg.emb_dim, cfg.groups)]
        if level in cfg.attention_levels:
            blocks.append(Attention(cout, cfg.groups))
        if level in cross:
            blocks.append(CrossAttention(cout, cfg.token_dim, cfg.groups))
        return nn.ModuleList(blocks)

    def embed(self, t: torch.Tensor, cond: dict[str, torch.Tensor] | None, batch: int) -> torch.Tensor:
        cfg = self.config
        emb = self.time_mlp(timestep_embedding(t.expand(batch) if t.ndim == 0 else t, cfg.base_channels))
        if self.cond_mlp is not None:
            text = cond["text"] if cond is not None and "text" in cond else emb.new_zeros(batch, cfg.cond_dim)
            emb = emb + self.cond_mlp(text.to(emb.dtype))
        if self.aug_mlp is not None:
            level = cond["noise_level"] if cond is not None and "noise_level" in cond else t.new_zeros(batch)
            emb = emb + self.aug_mlp(timestep_embedding(level, cfg.base_channels))
        return F.silu(emb)

    def context(self, cond: dict[str, torch.Tensor] | None, batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(context [B, 1 + L, D], mask bool [B, 1 + L]) for cross-attention: null token, then the prompt's."""
        if self.mid_cross is None:
            return None
        null = self.null_token.expand(batch, 1, -1)
        if cond is None or "tokens" not in cond:
            return null, torch.ones(batch, 1, dtype=torch.bool, device=null.device)
        tokens = self.context_norm(cond["tokens"].to(null.dtype))
        mask = cond["token_mask"] > 0.5
        keep = torch.ones(batch, 1, dtype=torch.bool, device=mask.device)
        return torch.cat([null, tokens], dim=1), torch.cat([keep, mask], dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor] | None) -> torch.Tensor:
        emb = self.embed(t, cond, x.shape[0])
        ctx = self.context(cond, x.shape[0])

        def apply(b: nn.Module, h: torch.Tensor) -> torch.Tensor:
            if isinstance(b, ResBlock):
                return b(h, emb)
            if isinstance(b, CrossAttention):
                return b(h, *ctx)
            return b(h)

        if self.config.lowres_channels:
            if cond is None or "lowres" not in cond:
                raise ValueError("a super-resolution UNet needs cond['lowres']")
            x = torch.cat([x, cond["lowres"].to(x.dtype)], dim=1)
        if self.config.concat_channels:
            if cond is None or "concat" not in cond:
                raise ValueError("an image-to-image (Palette) UNet needs cond['concat']")
            known = cond["concat"].to(x.dtype)
            x = torch.cat([x, known.expand(x.shape[0], -1, -1, -1) if known.shape[0] == 1 else known], dim=1)
        h = self.stem(x)
        hs = [h]
        for blocks in self.down:
            for b in blocks:
                h = apply(b, h)
            hs.append(h)
        h = self.mid_attn(self.mid1(h, emb))
        if self.mid_cross is not None:
            h = self.mid_cross(h, *ctx)
        h = self.mid2(h, emb)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            for b in blocks:
                h = apply(b, h)
        return self.out(F.silu(self.out_norm(h)))
