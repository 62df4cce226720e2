"""The training arrays in memory, and batches drawn from them with an explicit generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .dataset import CATEGORIES

# Categories whose pictures keep their meaning when mirrored: all but arrows/text (Symbols) and Flags.
FLIPPABLE = frozenset(CATEGORIES) - {"Symbols", "Flags"}


@dataclass
class TrainData:
    images32: torch.Tensor  # uint8 [N, 3, 32, 32]
    images64: torch.Tensor | None  # uint8 [N, 3, 64, 64]
    category: torch.Tensor  # int64 [N]
    group: torch.Tensor  # int64 [N]: one id per emoji, shared by its skin tones and vendors
    caption_start: torch.Tensor  # int64 [N]
    caption_count: torch.Tensor  # int64 [N]
    caption_emb: torch.Tensor  # float32 [C, D]
    caption_tokens: torch.Tensor | None  # float16 [C, L, D] token states, when the npz has them
    caption_token_mask: torch.Tensor | None  # bool [C, L]
    weights: torch.Tensor  # float64 [N] sampling weight: every emoji (all its skin tones) counts once
    flippable: torch.Tensor  # bool [N]
    categories: list[str]

    def __len__(self) -> int:
        return int(self.images32.shape[0])


def load(path: Path, with64: bool = False) -> TrainData:
    """Load an npz written by ``python -m studio.train.dataset``."""
    if not Path(path).is_file():
        raise ValueError(f"training data not found: {path} (build it with python -m studio.train.dataset)")
    z = np.load(path)
    group = torch.from_numpy(z["group"])
    counts = torch.bincount(group).double()
    categories = [str(c) for c in z["categories"]]
    category = torch.from_numpy(z["category"])
    flip_ids = torch.tensor([i for i, c in enumerate(categories) if c in FLIPPABLE])
    return TrainData(
        images32=torch.from_numpy(z["images32"]).permute(0, 3, 1, 2).contiguous(),
        images64=torch.from_numpy(z["images64"]).permute(0, 3, 1, 2).contiguous() if with64 else None,
        category=category,
        group=group,
        caption_start=torch.from_numpy(z["caption_start"]),
        caption_count=torch.from_numpy(z["caption_count"]),
        caption_emb=torch.from_numpy(z["caption_emb"].astype(np.float32)),
        caption_tokens=torch.from_numpy(z["caption_tokens"]) if "caption_tokens" in z.files else None,
        caption_token_mask=(
            torch.from_numpy(z["caption_token_mask"]).bool() if "caption_token_mask" in z.files else None
        ),
        weights=1.0 / counts[group],
        flippable=torch.isin(category, flip_ids),
        categories=categories,
    )


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float32 in [-1, 1]."""
    return images.float() / 127.5 - 1


def sample_batch(data: TrainData, batch: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Indices, a random caption per image (embedding, and token states when loaded), a mirror flag."""
    idx = torch.multinomial(data.weights, batch, replacement=True, generator=g)
    pick = (torch.rand(batch, generator=g) * data.caption_count[idx]).long()
    caption = data.caption_start[idx] + pick
    text = data.caption_emb[caption]
    flip = (torch.rand(batch, generator=g) < 0.5) & data.flippable[idx]
    out = {"idx": idx, "text": text, "flip": flip, "category": data.category[idx]}
    if data.caption_tokens is not None and data.caption_token_mask is not None:
        out["tokens"] = data.caption_tokens[caption].float()
        out["token_mask"] = data.caption_token_mask[caption].float()
    return out


def flip_where(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    return torch.where(flip[:, None, None, None], x.flip(-1), x)
