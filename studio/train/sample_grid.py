"""Write studio/resources/embedded/samples.png: fixed prompts (rows) x fixed seeds (columns).

    python -m studio.train.sample_grid --out studio/resources/embedded/samples.png
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


def with_row_labels(img: Image.Image, labels: tuple[str, ...], title: str) -> Image.Image:
    """The grid with each row's prompt written to its left and the settings above it."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=16)
    margin, header = 150, 28
    out = Image.new("RGB", (img.width + margin, img.height + header), (255, 255, 255))
    out.paste(img, (margin, header))
    draw = ImageDraw.Draw(out)
    draw.text((6, 5), title, fill=(60, 60, 60), font=font)
    row = img.height / len(labels)
    for i, label in enumerate(labels):
        draw.text((6, header + row * (i + 0.5)), label, fill=(20, 20, 20), font=font, anchor="lm")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Required, like the other training tools' --out: a default inside a checkout means nothing once installed.
    p.add_argument("--out", type=Path, required=True, help="PNG to write (the shipped one: "
                                                          "studio/resources/embedded/samples.png in a checkout)")
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
    img = with_row_labels(img, PROMPTS, title=f"CFG {a.cfg:g}, classifier guidance {a.classifier_scale:g}, "
                                               f"{a.steps} steps, seeds 0-{a.seeds - 1}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    print(f"wrote {a.out}: rows = {', '.join(PROMPTS)}")


if __name__ == "__main__":
    main()
