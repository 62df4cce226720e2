"""Build the emoji training set from pinned npm packages.

    python -m studio.train.dataset emoji --cache ~/.cache/diffusion-studio/npm --out emoji.npz
    python -m studio.train.dataset folder --images my_pictures/ --out mine.npz

Fetches emoji-datasource-google and emoji-datasource-twitter (64 px PNGs),
Microsoft's Fluent emoji in their flat and colour designs (Iconify's SVG
packages, drawn with Qt's SVG renderer) and emojibase-data (labels, tags) with
``npm pack`` into a cache outside the repo, composites every image on white,
and writes one npz with uint8 images at
32 and 64 px, caption strings, their MiniLM embeddings, category ids and the
group id that ties skin-tone variants of one emoji together.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..io.image_formats import is_image_path, suffix_list
from .svg_render import IconSet

# Pinned sources. Licences are recorded in studio/resources/embedded/NOTICE.
SOURCES = {
    "emoji-datasource-google": "16.0.0",  # images Apache-2.0 (Noto Emoji)
    "emoji-datasource-twitter": "16.0.0",  # images CC-BY-4.0 (Twemoji), credit required
    "emojibase-data": "16.0.3",  # labels and tags, MIT
    "@iconify-json/fluent-emoji-flat": "1.2.6",  # Fluent Emoji Flat SVGs, MIT (Microsoft)
    "@iconify-json/fluent-emoji": "1.2.7",  # Fluent Emoji colour SVGs, MIT (Microsoft)
}
VENDORS = ("google", "twitter")  # emoji-datasource's PNG sets
FLUENT_SETS = ("@iconify-json/fluent-emoji-flat", "@iconify-json/fluent-emoji")  # vendor ids 2 and 3
# emoji-datasource's categories; "Component" (skin-tone swatches, hair) folds into Symbols.
CATEGORIES = (
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
)
SKIN_WORDS = {
    "1F3FB": "light skin tone",
    "1F3FC": "medium-light skin tone",
    "1F3FD": "medium skin tone",
    "1F3FE": "medium-dark skin tone",
    "1F3FF": "dark skin tone",
}


def fetch(cache: Path) -> dict[str, Path]:
    """npm pack each pinned package into ``cache`` (once) and unpack it; returns package roots."""
    cache.mkdir(parents=True, exist_ok=True)
    roots = {}
    for name, version in SOURCES.items():
        root = cache / f"{name.lstrip('@').replace('/', '-')}-{version}"
        if not (root / "package" / "package.json").is_file():
            tgz = cache / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"  # npm pack's file name
            if not tgz.is_file():
                # npm pack lists every file of the tarball (thousands of lines): keep it out of the log
                done = subprocess.run(["npm", "pack", f"{name}@{version}"], cwd=cache, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"npm pack {name}@{version} failed:\n{done.stderr[-2000:]}")
            root.mkdir(exist_ok=True)
            with tarfile.open(tgz) as tar:
                tar.extractall(root, filter="data")
        roots[name] = root / "package"
    return roots


def on_white(path: Path) -> Image.Image:
    """RGBA emoji over a white background, as RGB."""
    rgba = Image.open(path).convert("RGBA")
    if rgba.size != (64, 64):
        rgba = rgba.resize((64, 64), Image.Resampling.LANCZOS)
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def _strip_fe0f(code: str) -> str:
    return "-".join(p for p in code.upper().split("-") if p != "FE0F")


def _vendor_has(entry: dict, image: str, vendor: str) -> bool:
    """Only the vendor's own drawing: never a fallback image borrowed from another (licence!)."""
    if entry["image"] == image:
        return bool(entry.get(f"has_img_{vendor}", False))
    var = next((v for v in entry.get("skin_variations", {}).values() if v["image"] == image), {})
    return bool(var.get(f"has_img_{vendor}", False))


def captions_for(entry: dict, labels: dict[str, dict], skin: str | None) -> list[str]:
    """Several phrasings of one emoji, so the network learns meaning rather than one string."""
    base = labels.get(_strip_fe0f(entry["unified"]), {})
    names = [entry.get("name") or "", base.get("label", "")]
    names += [s.replace("_", " ").replace("-", " ") for s in entry.get("short_names", [])]
    names = [n.lower().strip() for n in names if n and n.strip()]
    names = list(dict.fromkeys(names))
    tags = [t for t in base.get("tags", []) if t.lower() not in names]
    caps = list(names)
    if names:
        caps.append(f"{names[0]} emoji")
    if tags:
        caps.append(", ".join([names[0]] + tags[:5]) if names else ", ".join(tags[:5]))
    if skin:
        caps = [f"{c}: {SKIN_WORDS[skin]}" for c in caps]
    return caps


def build(cache: Path) -> dict[str, np.ndarray]:
    roots = fetch(cache)
    labels = {}
    for e in json.loads((roots["emojibase-data"] / "en" / "data.json").read_text()):
        labels[_strip_fe0f(e["hexcode"])] = e
    flat = roots[FLUENT_SETS[0]]
    fluent = [IconSet(flat), IconSet(roots[FLUENT_SETS[1]], chars_from=flat)]
    entries = json.loads((roots["emoji-datasource-google"] / "emoji.json").read_text())
    entries.sort(key=lambda e: e["sort_order"])
    img64, cat_ids, groups, vendor_ids, cap_start, cap_count, captions, names = [], [], [], [], [], [], [], []
    for group, entry in enumerate(entries):
        category = entry["category"] if entry["category"] in CATEGORIES else "Symbols"
        variants = [(entry["image"], None)]
        for skin_key, var in sorted(entry.get("skin_variations", {}).items()):
            if "-" not in skin_key:  # two-person mixed tones add little; keep single tones
                variants.append((var["image"], skin_key))
        for image, skin in variants:
            caps = captions_for(entry, labels, skin)
            if not caps:
                continue
            for v, vendor in enumerate(VENDORS):
                path = roots[f"emoji-datasource-{vendor}"] / "img" / vendor / "64" / image
                if not path.is_file() or not _vendor_has(entry, image, vendor):
                    continue
                img64.append(np.asarray(on_white(path), dtype=np.uint8))
                cat_ids.append(CATEGORIES.index(category))
                groups.append(group)
                vendor_ids.append(v)
                cap_start.append(len(captions))
                cap_count.append(len(caps))
                names.append(caps[0])
            for f, icons in enumerate(fluent):
                icon = icons.name_for(Path(image).stem)
                if icon is None:
                    continue
                img64.append(icons.render(icon))
                cat_ids.append(CATEGORIES.index(category))
                groups.append(group)
                vendor_ids.append(len(VENDORS) + f)
                cap_start.append(len(captions))
                cap_count.append(len(caps))
                names.append(caps[0])
            captions.extend(caps)  # every design's rows point at this one caption block
    return _dataset_arrays(img64, cat_ids, groups, vendor_ids, cap_start, cap_count, captions, names, CATEGORIES)


def _dataset_arrays(
    img64: list[np.ndarray], category: list[int], group: list[int], vendor: list[int], caption_start: list[int],
    caption_count: list[int], captions: list[str], name: list[str], categories: list[str],
) -> dict[str, np.ndarray]:
    """The arrays of a dataset file (what ``data.load`` reads), with the 32 px images box-filtered from the 64 px."""
    arr64 = np.stack(img64)
    arr32 = np.stack([np.asarray(Image.fromarray(a).resize((32, 32), Image.Resampling.BOX)) for a in arr64])
    ints = {"category": category, "group": group, "vendor": vendor, "caption_start": caption_start,
            "caption_count": caption_count}
    return {"images64": arr64, "images32": arr32.astype(np.uint8),
            **{key: np.asarray(values, dtype=np.int64) for key, values in ints.items()},
            "captions": np.asarray(captions), "name": np.asarray(name), "categories": np.asarray(categories)}




def build_folder(folder: Path) -> dict[str, np.ndarray]:
    """Your own pictures: every image under ``folder``, centre-cropped square and resized to 64 px.

    The caption is the text of a ``<name>.txt`` next to the image if there is one,
    else the file name with ``_`` and ``-`` as spaces; the category is the
    sub-folder name (or "images" for files at the top).
    """
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if is_image_path(p))
    if not paths:
        raise ValueError(f"no images ({suffix_list()}) under {folder}")
    cats = sorted({p.parent.name if p.parent != folder else "images" for p in paths})
    img64, cat_ids, captions = [], [], []
    for p in paths:
        im = Image.open(p)
        im = on_white_any(im)
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((64, 64), Image.Resampling.LANCZOS)
        img64.append(np.asarray(im, dtype=np.uint8))
        cat_ids.append(cats.index(p.parent.name if p.parent != folder else "images"))
        txt = p.with_suffix(".txt")
        captions.append(txt.read_text().strip() if txt.is_file() else p.stem.replace("_", " ").replace("-", " "))
    n = len(paths)
    # Each picture is its own group and has one caption, at its own index.
    return _dataset_arrays(img64, cat_ids, list(range(n)), [0] * n, list(range(n)), [1] * n, captions, captions, cats)


def on_white_any(im: Image.Image) -> Image.Image:
    """Any PIL image as RGB, transparent parts on white."""
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="source", required=True)
    e = sub.add_parser("emoji", help="the pinned emoji packages (the embedded model's data)")
    e.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "diffusion-studio" / "npm")
    e.add_argument("--out", type=Path, required=True, help="npz file to write")
    f = sub.add_parser("folder", help="a folder of your own images")
    f.add_argument("--images", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True, help="npz file to write")
    t = sub.add_parser("tokens", help="(re)compute the caption embeddings of an existing npz in place")
    t.add_argument("--data", type=Path, required=True)
    args = p.parse_args(argv)
    if args.source == "tokens":
        if not args.data.is_file():
            raise SystemExit(f"no such dataset: {args.data}")
        data, args.out = dict(np.load(args.data)), args.data
    else:
        data = build(args.cache) if args.source == "emoji" else build_folder(args.images)
    data.update(embed_captions(list(data["captions"])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(args.out)
    print(f"wrote {args.out}: {len(data['images64'])} images, {len(data['captions'])} captions")


def embed_captions(captions: list[str]) -> dict[str, np.ndarray]:
    """Pooled sentence embeddings and the token states the base UNet's cross-attention reads (fp16)."""
    from studio.engine.models.text_encoder import TextEncoder

    pooled, tokens, mask = TextEncoder().encode_with_tokens(captions)
    return {"caption_emb": pooled.numpy().astype(np.float16),
            "caption_tokens": tokens.numpy().astype(np.float16),
            "caption_token_mask": mask.numpy().astype(np.uint8)}


if __name__ == "__main__":
    main()
