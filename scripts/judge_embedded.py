"""Score whether the embedded model draws what is asked: a held-out judge classifies samples.

    python scripts/judge_embedded.py [--seeds 4] [--steps 20] [--cfg 4] [--classifier-scale 0]

For a fixed list of prompts (each with the emoji category it belongs to) and
fixed seeds, generate with the shipped model, shrink each result to 32 px and
ask the judge (resources/embedded/judge.safetensors: a clean-image classifier
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


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=4.0)
    p.add_argument("--classifier-scale", type=float, default=0.0)
    p.add_argument("--final", action="store_true", help="judge the super-resolved output (slower)")
    p.add_argument("--root", type=Path, default=RESOURCE_DIR)
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    model = load_embedded_model(root=a.root)
    judge, categories = load_judge(a.root)
    t0 = time.time()
    hits = 0
    for prompt, expected in PROMPTS:
        if expected not in categories:
            raise ValueError(f"unknown category {expected!r}")
        images = generate(model, [prompt] * a.seeds, list(range(a.seeds)), steps=a.steps, cfg_scale=a.cfg,
                          classifier_scale=a.classifier_scale, final=a.final)
        x = torch.cat([image_to_unit(im) for im in images])
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=(32, 32), mode="area")
        with torch.no_grad():
            pred = judge(x).argmax(1).tolist()
        ok = sum(categories[i] == expected for i in pred)
        hits += ok
        print(f"{prompt:16s} {ok}/{a.seeds}  judged: {', '.join(categories[i] for i in pred)}")
    score = hits / (len(PROMPTS) * a.seeds)
    print(f"judge score: {score:.1%} ({hits}/{len(PROMPTS) * a.seeds}); cfg {a.cfg}, steps {a.steps}, "
          f"classifier scale {a.classifier_scale}, {time.time() - t0:.0f} s")
    return score


if __name__ == "__main__":
    main()
