"""Train the base (text -> 32 px) or super-resolution (32 -> 64 px) diffusion UNet.

v-prediction on the cosine schedule (Salimans & Ho 2022), 10% condition dropout
for classifier-free guidance, EMA weights, resumable from ``<run>/checkpoint.pt``.
Super-resolution follows cascaded diffusion (Ho et al. 2021): the upsampled
low-res image is noised to a random augmentation level that the network is told,
and it trains on random crops (it is fully convolutional and has no attention).
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.engine.models.unet import UNet, UNetConfig
from studio.engine.schedules import make_schedule

from .checkpoint import export_weights, load_checkpoint, save_checkpoint
from .data import TrainData, flip_where, load, sample_batch, to_unit
from .ema import EMA


@dataclass
class DiffusionArgs:
    kind: str  # "base" or "sr"
    data: Path
    run: Path
    export: Path | None
    config: UNetConfig
    batch: int = 64
    lr: float = 2e-4
    warmup: int = 500
    ema_decay: float = 0.999
    cond_drop: float = 0.1
    sr_crop: int = 32
    sr_aug_max: int = 500  # noise-augmentation timesteps drawn from [0, sr_aug_max)
    steps: int = 10**9
    minutes: float = 0.0  # stop after this many minutes (0: no limit)
    save_every: int = 200
    log_every: int = 25
    seed: int = 0
    device: str = "cpu"
    bf16: bool = True
    threads: int = 0
    init: Path | None = None  # start a new run from these weights (a checkpoint.pt or safetensors)
    lr_decay_minutes: float = 0.0  # cosine-decay the learning rate to 10% over this much training


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """The fixed low-res -> high-res interpolation shared by training and sampling."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def make_batch(
    a: DiffusionArgs, data: TrainData, g: torch.Generator, abar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """(x_t, t, cond, v target) for one batch, all randomness from ``g``."""
    b = sample_batch(data, a.batch, g)
    if a.kind == "base":
        x0 = flip_where(to_unit(data.images32[b["idx"]]), b["flip"])
        cond = prompt_cond(a, b, g)
    else:
        hi = flip_where(to_unit(data.images64[b["idx"]]), b["flip"])
        lo = upsample(flip_where(to_unit(data.images32[b["idx"]]), b["flip"]), 64)
        c = a.sr_crop
        oy, ox = (torch.randint(0, 64 - c + 1, (2,), generator=g) // 2 * 2).tolist() if c < 64 else (0, 0)
        x0, lo = hi[:, :, oy : oy + c, ox : ox + c], lo[:, :, oy : oy + c, ox : ox + c]
        level = torch.randint(0, a.sr_aug_max, (a.batch,), generator=g)
        ab = abar[level].float()[:, None, None, None]
        lo = ab.sqrt() * lo + (1 - ab).sqrt() * torch.randn(lo.shape, generator=g)
        cond = {"lowres": lo, "noise_level": level.float()}
    xt, t, v = noised(x0, abar, g)
    return xt, t, cond, v


def prompt_cond(a: DiffusionArgs, b: dict[str, torch.Tensor], g: torch.Generator) -> dict[str, torch.Tensor]:
    """The base's prompt conditioning for a batch from ``sample_batch``; ``a.cond_drop`` of the captions dropped."""
    keep = (torch.rand(a.batch, generator=g) >= a.cond_drop).float()
    cond = {"text": b["text"] * keep[:, None]}
    if a.config.token_dim:
        if "tokens" not in b:
            raise ValueError(f"{a.data} has no caption token states; add them with "
                             f"python -m studio.train.dataset tokens --data {a.data}")
        # a dropped caption loses its tokens too: only the null token is left to attend
        cond["tokens"] = b["tokens"] * keep[:, None, None]
        cond["token_mask"] = b["token_mask"] * keep[:, None]
    return cond


def noised(x0: torch.Tensor, abar: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, t, v target) for clean images ``x0`` at random timesteps: the v-prediction objective."""
    t = torch.randint(0, abar.shape[0], (x0.shape[0],), generator=g)
    ab = abar[t].float()[:, None, None, None]
    eps = torch.randn(x0.shape, generator=g)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    return xt, t.float(), v


def decay_factor(a: DiffusionArgs, trained_s: float) -> float:
    """Cosine from 1 to 0.1 over ``lr_decay_minutes`` of training; 1 when no decay is asked for."""
    if a.lr_decay_minutes <= 0:
        return 1.0
    frac = min(1.0, trained_s / (a.lr_decay_minutes * 60))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))


def warm_start(model: UNet, path: Path) -> None:
    """Copy every tensor whose name and shape match; new modules keep their (identity) init.

    This is how a network grows a part (cross-attention, say) without losing what it
    learned: the new blocks start with zero output, so step 0 reproduces the old model.
    """
    if not Path(path).is_file():
        raise ValueError(f"--init weights not found: {path}")
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        source = load_file(str(path))
    else:
        ckpt = load_checkpoint(Path(path))
        source = ckpt["ema"] if ckpt and "ema" in ckpt else (ckpt or {})
    own = model.state_dict()
    taken = {k: v.float() for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    fresh = [k for k in own if k not in taken]
    print(f"warm start from {path}: {len(taken)} tensors copied, {len(fresh)} new", flush=True)


BatchFn = Callable[[DiffusionArgs, TrainData, torch.Generator, torch.Tensor],
                   tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]]


def train(a: DiffusionArgs, data: TrainData | None = None, batch_fn: BatchFn = make_batch,
          init_fn: Callable[[UNet, Path], None] = warm_start,
          evaluate: Callable[[UNet], dict[str, float]] | None = None) -> None:
    """Train ``a.kind``; another kind of model (Palette: studio/train/palette.py) brings its own data,
    batches, warm start and an ``evaluate`` of the EMA weights at each save (logged and exported),
    and shares this loop, checkpoints and export."""
    if a.kind not in ("base", "sr") and batch_fn is make_batch:
        raise ValueError(f"unknown diffusion model kind {a.kind!r}; choose base or sr")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    data = data if data is not None else load(a.data, with64=a.kind == "sr")
    abar = make_schedule("cosine").alphas_cumprod
    ckpt_path = a.run / "checkpoint.pt"
    state = load_checkpoint(ckpt_path)
    config = UNetConfig.from_dict(json.loads(state["config"])) if state else a.config
    a.config = config
    model = UNet(config)
    if not state and a.init is not None:
        init_fn(model, a.init)
    # channels-last: mkldnn convolutions ran about 25% faster on these CPUs
    model = model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    ema = EMA(model, a.ema_decay)
    g = torch.Generator().manual_seed(a.seed)
    step, seen, trained_s = 0, 0, 0.0
    if state:
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["rng"])
        step, seen, trained_s = int(state["step"]), int(state["seen"]), float(state["trained_s"])
        print(f"resumed {ckpt_path} at step {step}", flush=True)
    a.run.mkdir(parents=True, exist_ok=True)
    (a.run / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{a.kind}: {n_params / 1e6:.2f}M parameters, {len(data)} images, device {device}", flush=True)

    stop = {"now": False}

    def on_signal(signum, frame):  # finish the step, save, exit cleanly
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def save() -> None:
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
            "rng": g.get_state(), "step": step, "seen": seen, "trained_s": trained_s,
            "config": json.dumps(config.to_dict()),
        })
        scores = evaluate(ema.model) if evaluate is not None else {}
        if scores:
            log.write(json.dumps({"step": step, **scores}) + "\n")
            log.flush()
            print(json.dumps({"step": step, **scores}), flush=True)
        if a.export is not None:
            meta = {"kind": a.kind, "step": step, "images_seen": seen,
                    "train_minutes": round(trained_s / 60, 1), "config": config.to_dict(), **scores}
            export_weights(ema.model.state_dict(), a.export, torch.float16, meta)

    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if a.bf16 else nullcontext()
    )
    log = (a.run / "log.jsonl").open("a")
    start = time.time()
    t0, run_loss, n_loss = time.time(), 0.0, 0
    model.train()
    while step < a.steps and not stop["now"]:
        if a.minutes and time.time() - start > a.minutes * 60:
            break
        xt, t, cond, v = batch_fn(a, data, g, abar)
        xt, t, v = xt.to(device, memory_format=torch.channels_last), t.to(device), v.to(device)
        cond = {k: c.to(device) for k, c in cond.items()}
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * decay_factor(a, trained_s + time.time() - t0)
        for pg in opt.param_groups:
            pg["lr"] = lr
        with autocast:
            out = model(xt, t, cond)
        loss = F.mse_loss(out.float(), v)
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"loss became {loss.item()} at step {step}; lower --lr or disable --bf16")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, step)
        step += 1
        seen += a.batch
        run_loss += loss.item()
        n_loss += 1
        if step % a.log_every == 0:
            dt = time.time() - t0
            trained_s += dt
            rec = {"step": step, "loss": run_loss / n_loss, "img_per_s": n_loss * a.batch / dt,
                   "passes": seen / len(data), "minutes": trained_s / 60, "lr": lr}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            t0, run_loss, n_loss = time.time(), 0.0, 0
        if step % a.save_every == 0:
            save()
    trained_s += time.time() - t0
    save()
    print(f"saved at step {step}", flush=True)
