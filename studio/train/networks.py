"""The UNets ``python -m studio.train`` builds, by kind, from its flags: one place for their defaults, which the
base's command line and Palette (grown from the base's network when no --init is given) both use."""

from __future__ import annotations

from dataclasses import replace

from ..engine.models.unet import UNetConfig

# Each kind's defaults, as the command line's flags name them.
DEFAULTS = {
    "base": {"channels": 48, "mults": (1, 2, 3), "blocks": 2, "cross_attention": (2,)},
    "sr": {"channels": 32, "mults": (1, 2, 2), "blocks": 2, "cross_attention": ()},
}
PROMPT_DIM = 384  # the frozen prompt encoder's width (pooled and per token)


def network(kind: str, channels: int | None = None, mults: tuple[int, ...] | None = None, blocks: int | None = None,
            cross_attention: tuple[int, ...] | None = None) -> UNetConfig:
    """The ``kind`` ("base" or "sr") network, its defaults where a value is None. The base attends to itself at its
    lowest level and reads the prompt; the SR network reads the low-resolution image instead."""
    d = DEFAULTS[kind]
    mults = d["mults"] if mults is None else mults
    base = kind == "base"
    config = UNetConfig(base_channels=d["channels"] if channels is None else channels, channel_mults=mults,
                        blocks_per_level=d["blocks"] if blocks is None else blocks,
                        attention_levels=(len(mults) - 1,) if base else (), cond_dim=PROMPT_DIM if base else 0,
                        lowres_channels=0 if base else 3)
    cross = d["cross_attention"] if cross_attention is None else cross_attention
    return replace(config, token_dim=PROMPT_DIM, cross_attention_levels=cross) if base and cross else config
