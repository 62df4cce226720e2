"""Show the Palette models on emoji they never trained on: colourisation and inpainting beside the originals.

    python scripts/palette_samples.py --data emoji.npz --out studio/resources/embedded/palette_samples.png
        [--weights palette.safetensors] [--rows 8] [--seeds 3] [--steps 20] [--cfg 2]

Rows are held-out emoji (every tenth emoji group, the rule of the training and the judge),
spread over the data set. Top: original | grey input | colourised (one column per seed).
Bottom: original | masked (the hole in grey) | inpainted, with masks drawn as in training
(boxes and brush strokes). Every picture goes through the engine's Runner with an empty
prompt, as the studio runs the two models. Prints PSNR against the originals: the grey
input's and the colourised pictures', and inside the holes the inpainted pictures'.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from studio.engine.models.palette import COLOURISE, INPAINT, PaletteModel  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.train.palette import held_out, random_masks  # noqa: E402
from studio.train.sample_grid import with_row_labels  # noqa: E402
from studio.train.sampling import grid  # noqa: E402


def held_out_rows(data: Path, rows: int) -> tuple[list[np.ndarray], list[str]]:
    """``rows`` 64 px originals of held-out emoji spread over the data set, each design in turn, and their names."""
    z = np.load(data)
    group = torch.from_numpy(z["group"])
    groups = sorted(set(group[held_out(group)].tolist()))
    if not groups:
        raise SystemExit(f"{data} holds no held-out emoji (group % 10 == 0)")
    picked = [groups[i * len(groups) // rows] for i in range(min(rows, len(groups)))]
    images64, all_names, images, names = z["images64"], z["name"], [], []  # each z[...] reads the whole array
    for i, gid in enumerate(picked):
        members = np.nonzero(group.numpy() == gid)[0]
        r = members[i % len(members)]
        images.append(images64[r])
        names.append(str(all_names[r])[:18])
    return images, names


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = diff[where].mean() if where is not None else diff.mean()
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the npz the model trained on (its held-out emoji)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--weights", type=Path, default=None, help="palette.safetensors (default: the shipped one)")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour enlargement of the picture")
    a = p.parse_args(argv)
    originals, names = held_out_rows(a.data, a.rows)
    masks = random_masks(len(originals), 32, 0.0, torch.Generator().manual_seed(0))
    masks = masks.repeat_interleave(2, -1).repeat_interleave(2, -2)[:, 0].numpy()  # 64 px, as painted
    panels, scores = [], {"grey": [], "colourised": [], "inpainted hole": []}
    for task in (COLOURISE, INPAINT):
        model = PaletteModel(task, weights=a.weights)
        runner, cells = Runner(model), []
        for original, mask in zip(originals, masks, strict=True):
            grey = np.repeat(np.asarray(Image.fromarray(original).convert("L"))[..., None], 3, axis=2)
            shown = grey if task == COLOURISE else np.where(mask[..., None] > 0, 128, original).astype(np.uint8)
            request = GenerationRequest(prompt="", steps=a.steps, cfg_scale=a.cfg, width=64, height=64,
                                        strength=1.0, mask_feather=0, init_image=grey if task == COLOURISE
                                        else original, mask=None if task == COLOURISE else mask.astype(np.float32))
            cells += [original, shown]
            if task == COLOURISE:
                scores["grey"].append(psnr(grey, original))
            for seed in range(a.seeds):
                image = runner.run(request.with_changes(seed=seed)).image
                cells.append(image)
                if task == COLOURISE:
                    scores["colourised"].append(psnr(image, original))
                else:
                    scores["inpainted hole"].append(psnr(image, original, mask > 0))
        cols = 2 + a.seeds
        img = Image.fromarray(grid(cells, cols))
        img = img.resize((img.width * a.scale, img.height * a.scale), Image.Resampling.NEAREST)
        what = ("Colouriser: original | grey input | seeds" if task == COLOURISE
                else "Inpainting: original | masked | seeds")
        panels.append(with_row_labels(img, tuple(names), f"{what} 0-{a.seeds - 1} (held-out emoji)"))
    out = Image.new("RGB", (max(im.width for im in panels), sum(im.height for im in panels)), (255, 255, 255))
    y = 0
    for im in panels:
        out.paste(im, (0, y))
        y += im.height
    a.out.parent.mkdir(parents=True, exist_ok=True)
    out.save(a.out)
    print(f"wrote {a.out} ({a.steps} steps, CFG {a.cfg:g}, empty prompt): rows = {', '.join(names)}")
    for k, v in scores.items():
        print(f"PSNR {k}: {np.mean(v):.2f} dB (mean of {len(v)})")


if __name__ == "__main__":
    main()
