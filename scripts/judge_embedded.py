"""Score whether the embedded model draws what is asked: a held-out judge classifies samples.

    python scripts/judge_embedded.py [--seeds 4] [--steps 20] [--cfg 1 3] [--classifier-scale 0 10]

For a fixed list of prompts (each with the emoji category it belongs to) and
fixed seeds, generate with the shipped model, shrink each result to 32 px and
ask the judge (studio/resources/embedded/judge.safetensors: a clean-image classifier
trained separately, never used for guidance, with every tenth emoji held out)
which category it shows. Prints per-prompt hits and the overall score.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from studio.engine.models.base import image_to_unit  # noqa: E402
from studio.engine.models.classifier import Classifier, ClassifierConfig  # noqa: E402
from studio.engine.models.embedded import RESOURCE_DIR, load_embedded_model  # noqa: E402
from studio.train.sampling import generate  # noqa: E402

# (prompt, expected emoji-datasource category); several are words not in any caption.
PROMPTS = (
    ("red heart", "Smileys & Emotion"), ("smiling face", "Smileys & Emotion"),
    ("crying face", "Smileys & Emotion"), ("ghost", "Smileys & Emotion"),
    ("kitten", "Animals & Nature"), ("dog", "Animals & Nature"), ("tree", "Animals & Nature"),
    ("sunflower", "Animals & Nature"), ("pizza", "Food & Drink"), ("green apple", "Food & Drink"),
    ("birthday cake", "Food & Drink"), ("hamburger", "Food & Drink"), ("car", "Travel & Places"),
    ("rocket", "Travel & Places"), ("house", "Travel & Places"), ("bicycle", "Travel & Places"),
    ("soccer ball", "Activities"), ("trophy", "Activities"), ("thumbs up", "People & Body"),
    ("waving hand", "People & Body"), ("light bulb", "Objects"), ("mobile phone", "Objects"),
    ("flag of france", "Flags"), ("flag of japan", "Flags"),
)


def load_judge(root: Path) -> tuple[Classifier, list[str]]:
    path = root / "judge.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"judge weights missing: {path} (train with python -m studio.train judge)")
    cfg = json.loads((root / "config.json").read_text())
    judge = Classifier(ClassifierConfig.from_dict(cfg["judge"]["config"]))
    judge.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return judge.eval(), list(cfg["categories"])


def score(model, judge, categories: list[str], *, seeds: int, steps: int, cfg: float, classifier_scale: float,
          final: bool, verbose: bool) -> float:
    """Fraction of (prompt, seed) samples the judge puts in the prompt's category."""
    hits = 0
    for prompt, expected in PROMPTS:
        if expected not in categories:
            raise ValueError(f"unknown category {expected!r}")
        images = generate(model, [prompt] * seeds, list(range(seeds)), steps=steps, cfg_scale=cfg,
                          classifier_scale=classifier_scale, final=final)
        x = torch.cat([image_to_unit(im) for im in images])
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=(32, 32), mode="area")
        with torch.no_grad():
            pred = judge(x).argmax(1).tolist()
        ok = sum(categories[i] == expected for i in pred)
        hits += ok
        if verbose:
            print(f"{prompt:16s} {ok}/{seeds}  judged: {', '.join(categories[i] for i in pred)}")
    return hits / (len(PROMPTS) * seeds)


def main(argv: list[str] | None = None) -> dict[tuple[float, float], float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, nargs="+", default=[4.0], help="one or more CFG scales")
    p.add_argument("--classifier-scale", type=float, nargs="+", default=[0.0],
                   help="one or more classifier-guidance scales (every pair with --cfg is scored)")
    p.add_argument("--final", action="store_true", help="judge the super-resolved output (slower)")
    p.add_argument("--quiet", action="store_true", help="only the score table, no per-prompt lines")
    p.add_argument("--root", type=Path, default=RESOURCE_DIR)
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    model = load_embedded_model(root=a.root)
    judge, categories = load_judge(a.root)
    scores = {}
    for cfg in a.cfg:
        for cls in a.classifier_scale:
            t0 = time.time()
            scores[cfg, cls] = score(model, judge, categories, seeds=a.seeds, steps=a.steps, cfg=cfg,
                                     classifier_scale=cls, final=a.final, verbose=not a.quiet)
            n = len(PROMPTS) * a.seeds
            print(f"judge score: {scores[cfg, cls]:.1%} ({round(scores[cfg, cls] * n)}/{n}); cfg {cfg}, "
                  f"classifier scale {cls}, steps {a.steps}, {time.time() - t0:.0f} s", flush=True)
    if len(scores) > 1:
        print("\n  cfg  classifier  score")
        for (cfg, cls), value in scores.items():
            print(f"{cfg:5g}  {cls:10g}  {value:6.1%}")
    return scores


if __name__ == "__main__":
    main()
