"""Tiny random upscaler networks for tests and benchmarks, in the layouts real upscaler files use.

``rrdb_state_dict`` writes the keys of Real-ESRGAN's RRDBNet (``conv_first``, ``body.N.rdbK.convM``,
``conv_body``, ``conv_up1``/``conv_up2``, ``conv_hr``, ``conv_last``), the layout of
RealESRGAN_x4plus.pth and most ESRGAN files shared today, with as few blocks and filters as a test
wants; the full ESRGAN size is 23 blocks of 64 filters with 32 growth channels.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch


def rrdb_state_dict(blocks: int = 1, filters: int = 8, growth: int = 32, scale: int = 4, seed: int = 0,
                    gain: float = 0.2) -> dict[str, torch.Tensor]:
    """Random RRDBNet weights (scale 2 or 4) that behave like an upscaler: the trunk carries the RGB input
    through (an identity centre tap on three channels) and the random rest, He initialisation scaled by
    ``gain``, adds texture. So the output is a picture in range, not noise clamped to black, and tiling
    differences show in tests. ``growth`` stays 32 for spandrel, which reads every other size off the
    weights but assumes ESRGAN's growth channels."""
    if scale not in (2, 4):
        raise ValueError("the test RRDBNet makes 2x or 4x networks")
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}

    def conv(name: str, cin: int, cout: int, carry_rgb: bool = False) -> None:
        std = gain * math.sqrt(2.0 / (cin * 9))
        weight = torch.randn(cout, cin, 3, 3, generator=gen) * std
        if carry_rgb:
            weight[:3, :3, 1, 1] += torch.eye(3)
        out[f"{name}.weight"] = weight
        out[f"{name}.bias"] = torch.randn(cout, generator=gen) * 0.01

    conv("conv_first", 3, filters, carry_rgb=True)
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                cin = filters + (c - 1) * growth
                conv(f"body.{b}.rdb{r}.conv{c}", cin, filters if c == 5 else growth)
    conv("conv_body", filters, filters)
    conv("conv_up1", filters, filters, carry_rgb=True)
    if scale == 4:
        conv("conv_up2", filters, filters, carry_rgb=True)
    conv("conv_hr", filters, filters, carry_rgb=True)
    conv("conv_last", filters, 3, carry_rgb=True)
    return out


def save_rrdb(path: str | Path, wrap: bool = True, **kwargs: object) -> Path:
    """Save ``rrdb_state_dict(**kwargs)``: a ``.safetensors`` file flat, a ``.pth`` under ``params_ema`` as
    Real-ESRGAN's releases do (``wrap=False``: a flat ``.pth``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = rrdb_state_dict(**kwargs)  # type: ignore[arg-type]
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"params_ema": state} if wrap else state, path)
    return path
