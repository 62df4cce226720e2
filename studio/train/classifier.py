"""Train the noisy category classifier (for classifier guidance) or the clean judge.

The judge holds out every tenth emoji (all its skin tones and both vendors) and
reports accuracy on them, so its score of generated samples is not a memory test.
"""

from __future__ import annotations

import json
import math
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.engine.models.classifier import Classifier, ClassifierConfig
from studio.engine.schedules import make_schedule

from .checkpoint import export_weights, load_checkpoint, save_checkpoint
from .data import flip_where, load, to_unit

HOLDOUT_EVERY = 10  # judge: emoji groups with group % 10 == 0 are never trained on


@dataclass
class ClassifierArgs:
    kind: str  # "classifier" (noisy, timestep-aware) or "judge" (clean)
    data: Path
    run: Path
    export: Path | None
    batch: int = 128
    lr: float = 1e-3
    steps: int = 3000
    minutes: float = 0.0
    save_every: int = 500
    seed: int = 0
    device: str = "cpu"
    bf16: bool = True
    threads: int = 0


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Small shifts and colour jitter, so the judge looks at shapes, not exact pixels."""
    b = x.shape[0]
    dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    gain = 1 + 0.1 * (torch.rand(b, 3, 1, 1, generator=g) - 0.5)
    return (x * gain).clamp(-1, 1) + 0.05 * torch.randn(x.shape, generator=g)


def train(a: ClassifierArgs) -> None:
    if a.kind not in ("classifier", "judge"):
        raise ValueError(f"unknown classifier kind {a.kind!r}; choose classifier or judge")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    data = load(a.data)
    group = data.group
    holdout = (group % HOLDOUT_EVERY == 0) if a.kind == "judge" else torch.zeros_like(group, dtype=torch.bool)
    weights = data.weights * (~holdout).double()
    abar = make_schedule("cosine").alphas_cumprod
    config = ClassifierConfig(num_classes=len(data.categories), timestep=a.kind == "classifier",
                              base_channels=32 if a.kind == "classifier" else 24)
    model = Classifier(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(a.seed)
    ckpt_path = a.run / "checkpoint.pt"
    state = load_checkpoint(ckpt_path)
    step = 0
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["rng"])
        step = int(state["step"])
    a.run.mkdir(parents=True, exist_ok=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda s, f: stop.update(now=True))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if a.bf16 else nullcontext()
    log = (a.run / "log.jsonl").open("a")

    def evaluate() -> float:
        """Accuracy on held-out emoji (judge) or on every image at t < 250 (classifier)."""
        model.eval()
        idx = holdout.nonzero().squeeze(1) if a.kind == "judge" else torch.arange(len(data))
        correct = 0
        with torch.no_grad():
            for i in range(0, len(idx), 512):
                j = idx[i:i + 512]
                x = to_unit(data.images32[j])
                t = torch.full((len(j),), 100.0)
                if a.kind == "classifier":
                    ab = float(abar[100])
                    x = ab**0.5 * x + (1 - ab) ** 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
                correct += int((model(x.to(device), t.to(device)).argmax(1).cpu() == data.category[j]).sum())
        model.train()
        return correct / max(1, len(idx))

    def save() -> None:
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "opt": opt.state_dict(), "rng": g.get_state(),
                                    "step": step})
        if a.export is not None:
            acc = evaluate()
            meta = {"kind": a.kind, "step": step, "config": config.to_dict(),
                    "holdout_accuracy" if a.kind == "judge" else "accuracy_t100": round(acc, 4)}
            export_weights(model.state_dict(), a.export, torch.float16, meta)
            print(json.dumps({"step": step, "eval_accuracy": acc}), flush=True)

    start = time.time()
    t0, run_loss, n = time.time(), 0.0, 0
    while step < a.steps and not stop["now"]:
        if a.minutes and time.time() - start > a.minutes * 60:
            break
        idx = torch.multinomial(weights, a.batch, replacement=True, generator=g)
        flip = (torch.rand(a.batch, generator=g) < 0.5) & data.flippable[idx]
        x0 = flip_where(to_unit(data.images32[idx]), flip)
        y = data.category[idx]
        if a.kind == "classifier":
            t = torch.randint(0, abar.shape[0], (a.batch,), generator=g)
            ab = abar[t].float()[:, None, None, None]
            x = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(x0.shape, generator=g)
            t = t.float()
        else:
            x, t = _augment(x0, g), torch.zeros(a.batch)
        lr = a.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / a.steps)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        with autocast:
            logits = model(x.to(device), t.to(device))
        loss = F.cross_entropy(logits.float(), y.to(device), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run_loss += loss.item()
        n += 1
        if step % 50 == 0:
            rec = {"step": step, "loss": run_loss / n, "img_per_s": n * a.batch / (time.time() - t0)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            t0, run_loss, n = time.time(), 0.0, 0
        if step % a.save_every == 0:
            save()
    save()
