"""Train Palette, the embedded model's image-to-image network: colourisation and inpainting in one.

Palette (Saharia et al. 2022): a diffusion model conditioned on a known image by
joining it to the noisy input (studio/engine/models/palette_inputs.py has the five
channels). It is the base UNet (32 px, the prompt read as a vector and word by word)
with a wider stem, trained multi-task: each image of a batch is, with even odds, a
colourisation (the whole picture to paint, its luminance given) or an inpainting
(random boxes or brush strokes to repaint, the rest given). The caption still
conditions it, dropped for 10% of the images, so it works with an empty prompt.

It warm-starts from the base's weights: every tensor is copied and the stem's new
input channels start at zero, so at step 0 it is exactly the base model. Every
tenth emoji (the judge's rule, classifier.HOLDOUT_EVERY) is held out of training,
so pictures of those (scripts/palette_samples.py) show what it does on emoji it
never saw. The loop, checkpoints and export are diffusion.py's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.engine.models.palette_inputs import CONCAT_CHANNELS, colourise_input, inpaint_input
from studio.engine.models.unet import UNet, UNetConfig
from studio.engine.schedules import make_schedule

from .checkpoint import load_checkpoint
from .classifier import HOLDOUT_EVERY
from .data import TrainData, flip_where, load, sample_batch, to_unit
from .diffusion import DiffusionArgs, noised, prompt_cond, train, warm_start
from .networks import network

# The base's network (README, MODEL_CARD.md) when no --init names one to grow from.
DEFAULT_CONFIG = network("base")


@dataclass
class PaletteArgs(DiffusionArgs):
    """DiffusionArgs with kind "palette" (the export's metadata says so) and the mix of tasks."""

    inpaint_share: float = 0.5  # the rest of the images are colourisations
    full_mask_share: float = 0.1  # inpaintings with nothing known: keeps it a text-to-image model too


def held_out(group: torch.Tensor) -> torch.Tensor:
    """Emoji groups never trained on (the judge's rule): all skin tones and designs of every tenth emoji."""
    return group % HOLDOUT_EVERY == 0


def palette_config(init: Path | None) -> UNetConfig:
    """The network of the weights it grows from (read from the file), with the known image's channels added."""
    if init is None:
        return replace(DEFAULT_CONFIG, concat_channels=CONCAT_CHANNELS)
    if not Path(init).is_file():
        raise ValueError(f"--init weights not found: {init}")
    if str(init).endswith(".safetensors"):
        config = UNetConfig.stored_in(init)
    else:
        text = (load_checkpoint(Path(init)) or {}).get("config")
        config = UNetConfig.from_dict(json.loads(text)) if text else None
    if config is None:
        raise ValueError(f"{init} does not say which network it holds (no 'config'); use a file written by "
                         "python -m studio.train")
    if config.lowres_channels or not config.cond_dim:
        raise ValueError(f"{init} holds a super-resolution network; grow Palette from the base model's weights")
    return replace(config, concat_channels=CONCAT_CHANNELS)


def warm_start_palette(model: UNet, path: Path) -> None:
    """Copy the base's weights; the stem's new input channels start at zero, so step 0 is the base model.

    A Palette file (a stem as wide as this one's) is copied as it is.
    """
    before = model.stem.weight.detach().clone()
    warm_start(model, path)
    if not torch.equal(before, model.stem.weight):
        return
    base = UNet(replace(model.config, concat_channels=0))
    warm_start(base, path)
    with torch.no_grad():
        model.stem.weight.zero_()
        model.stem.weight[:, : base.stem.weight.shape[1]] = base.stem.weight
        model.stem.bias.copy_(base.stem.bias)


def _stroke_mask(size: int, g: torch.Generator) -> torch.Tensor:
    """[size, size] brush strokes: 1-3 random walks of round dabs, the kind of hole a user paints."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    grid = torch.stack([yy, xx], -1).reshape(-1, 1, 2)
    out = torch.zeros(size * size, dtype=torch.bool)
    for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
        n = int(torch.randint(2, 7, (1,), generator=g))
        start = torch.rand(2, generator=g) * size
        angles = torch.rand(n - 1, generator=g) * 2 * math.pi
        lengths = size * (0.1 + 0.25 * torch.rand(n - 1, generator=g))
        steps = torch.stack([angles.sin(), angles.cos()], -1) * lengths[:, None]
        vertices = torch.cat([start[None], start + steps.cumsum(0)])
        along = torch.linspace(0, 1, 12)[None, :, None]
        points = (vertices[:-1, None] + along * (vertices[1:] - vertices[:-1])[:, None]).reshape(-1, 2)
        radius = size * (0.04 + 0.08 * float(torch.rand(1, generator=g)))
        out |= ((grid - points[None]).norm(dim=-1) <= radius).any(-1)
    return out.reshape(size, size).float()


def _box_mask(size: int, g: torch.Generator) -> torch.Tensor:
    """[size, size] 1-3 rectangles of 1/6 to 3/4 of the side."""
    out = torch.zeros(size, size)
    for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
        h, w = torch.randint(size // 6, size * 3 // 4 + 1, (2,), generator=g).tolist()
        y, x = int(torch.randint(0, size - h + 1, (1,), generator=g)), int(torch.randint(0, size - w + 1, (1,),
                                                                                         generator=g))
        out[y:y + h, x:x + w] = 1
    return out


def random_masks(n: int, size: int, full_share: float, g: torch.Generator) -> torch.Tensor:
    """[n, 1, size, size] binary holes: boxes or strokes with even odds, or (``full_share``) everything."""
    kind = torch.rand(n, generator=g)
    masks = []
    for k in kind.tolist():
        if k < full_share:
            masks.append(torch.ones(size, size))
        else:
            masks.append(_box_mask(size, g) if k < full_share + (1 - full_share) / 2 else _stroke_mask(size, g))
    return torch.stack(masks)[:, None]


def palette_batch(
    a: PaletteArgs, data: TrainData, g: torch.Generator, abar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """(x_t, t, cond, v target): the base's batch plus cond["concat"], the known image of each one's task."""
    b = sample_batch(data, a.batch, g)
    x0 = flip_where(to_unit(data.images32[b["idx"]]), b["flip"])
    cond = prompt_cond(a, b, g)
    inpaint = (torch.rand(a.batch, generator=g) < a.inpaint_share)[:, None, None, None]
    masks = random_masks(a.batch, x0.shape[-1], a.full_mask_share, g)
    cond["concat"] = torch.where(inpaint, inpaint_input(x0, masks), colourise_input(x0))
    xt, t, v = noised(x0, abar, g)
    return xt, t, cond, v


def training_data(path: Path) -> TrainData:
    """The npz with the held-out emoji given no weight in the draw of batches."""
    data = load(path)
    hold = held_out(data.group)
    if bool(hold.all()):
        raise ValueError(f"{path}: every emoji group is held out (group % {HOLDOUT_EVERY} == 0); "
                         "the data needs more than one emoji")
    print(f"palette: {int(hold.sum())} of {len(data)} images held out (every {HOLDOUT_EVERY}th emoji)", flush=True)
    return replace(data, weights=data.weights * (~hold).double())


EVAL_TIMESTEPS = (300, 600, 900)


def held_out_loss(data: TrainData, count: int = 48) -> Callable[[UNet], dict[str, float]]:
    """A fixed test of a network on held-out emoji: its v-loss per task at a few noise levels, the same
    images, masks and noise each time, with the empty prompt the studio starts from. At step 0 (the base)
    both tasks score the same, as the known image is not read yet; the gap that opens is what it learned."""
    rows = held_out(data.group).nonzero()[:, 0]
    rows = rows[torch.linspace(0, len(rows) - 1, min(count, len(rows))).long()]
    x0 = to_unit(data.images32[rows])
    n, g = len(rows), torch.Generator().manual_seed(0)
    known = {"colour": colourise_input(x0), "inpaint": inpaint_input(x0, random_masks(n, x0.shape[-1], 0.0, g))}
    abar = make_schedule("cosine").alphas_cumprod
    noisy = []
    for t in EVAL_TIMESTEPS:
        eps, ab = torch.randn(x0.shape, generator=g), abar[t].float()
        noisy.append((t, ab.sqrt() * x0 + (1 - ab).sqrt() * eps, ab.sqrt() * eps - (1 - ab).sqrt() * x0))

    @torch.no_grad()
    def evaluate(model: UNet) -> dict[str, float]:
        device, cfg = next(model.parameters()).device, model.config
        empty = {"text": torch.zeros(n, cfg.cond_dim, device=device)}
        if cfg.token_dim:
            empty.update(tokens=torch.zeros(n, 1, cfg.token_dim, device=device),
                         token_mask=torch.zeros(n, 1, device=device))
        scores = {}
        for task, concat in known.items():
            losses = [F.mse_loss(model(xt.to(device), torch.full((n,), float(t), device=device),
                                       {**empty, "concat": concat.to(device)}).float().cpu(), v).item()
                      for t, xt, v in noisy]
            scores[f"held_out_{task}_loss"] = round(sum(losses) / len(losses), 5)
        return scores

    return evaluate


def train_palette(a: PaletteArgs) -> None:
    """Train (or resume) a Palette run (``python -m studio.train palette``)."""
    data = training_data(a.data)
    train(a, data=data, batch_fn=palette_batch, init_fn=warm_start_palette, evaluate=held_out_loss(data))
