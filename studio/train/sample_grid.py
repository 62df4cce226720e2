"""Write resources/embedded/samples.png: fixed prompts (rows) x fixed seeds (columns).

    python -m studio.train.sample_grid --out resources/embedded/samples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from .sampling import generate, grid

PROMPTS = (
    "red heart", "smiling face", "cat", "kitten", "dog face", "love", "pizza", "rocket",
    "sun", "star", "ghost", "green apple", "tree", "car", "soccer ball", "thumbs up",
    "flag of france", "birthday cake", "crying face", "fire",
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("resources/embedded/samples.png"))
    p.add_argument("--root", type=Path, default=None, help="model folder (default: the shipped one)")
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=4.0)
    p.add_argument("--classifier-scale", type=float, default=0.0)
    p.add_argument("--base-only", action="store_true", help="skip super-resolution")
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour enlargement of the grid")
    a = p.parse_args(argv)
    from studio.engine.models.embedded import load_embedded_model

    model = load_embedded_model(root=a.root)
    images = []
    for prompt in PROMPTS:
        images += generate(model, [prompt] * a.seeds, list(range(a.seeds)), steps=a.steps, cfg_scale=a.cfg,
                           classifier_scale=a.classifier_scale, final=not a.base_only)
    img = Image.fromarray(grid(images, a.seeds))
    img = img.resize((img.width * a.scale, img.height * a.scale), Image.Resampling.NEAREST)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    print(f"wrote {a.out}: rows = {', '.join(PROMPTS)}")


if __name__ == "__main__":
    main()
