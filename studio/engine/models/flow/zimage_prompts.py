"""Z-Image's prompt reading: Qwen3's chat wrapping, its penultimate hidden layer, one vector per real token.

Z-Image conditions on Qwen3-4B's second-to-last hidden states for the prompt wrapped as one user turn of
Qwen3's chat ("thinking" left on, so no empty think block follows). Only the prompt's own tokens count:
the transformer takes a variable-length caption per image, so nothing is padded into it. The studio's
cond and uncond are batch-first tensors that guidance concatenates, so a pair is padded to one length
and carries each caption's true length beside it (``cap_len``); the velocity call cuts the padding off.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ....resource_files import resource_dir
from ..errors import ModelLoadError

TOKENIZER_DIR = resource_dir("flow_configs", "qwen_tokenizer")
# What Qwen3's chat template renders for [{"role": "user", "content": prompt}] with add_generation_prompt=True
# and enable_thinking=True (ZImagePipeline's call; ComfyUI's Z-Image tokenizer writes the same string).
CHAT_FORMAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
MAX_TOKENS = 512  # the pipeline's max_sequence_length: longer prompts are cut there
HIDDEN_LAYER = -2  # hidden_states[-2]: the output of the second-to-last decoder layer


def chat_text(prompt: str) -> str:
    return CHAT_FORMAT.format(prompt)


def load_qwen_tokenizer(folder: Path | None = None):
    """Qwen's byte-level BPE tokenizer from ``folder`` (a pipeline's tokenizer/) or the shipped files."""
    from transformers import Qwen2Tokenizer

    folder = folder if folder is not None and (folder / "vocab.json").is_file() else TOKENIZER_DIR
    try:
        return Qwen2Tokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"the Qwen tokenizer in {folder} cannot be read ({exc})") from exc


class QwenPromptEncoder:
    """Prompt -> Qwen3 hidden states [tokens, width] of the real (unpadded) tokens."""

    def __init__(self, tokenizer, encoder: torch.nn.Module, device: torch.device):
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.device = device

    def token_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(chat_text(prompt), truncation=True, max_length=MAX_TOKENS).input_ids

    @torch.no_grad()
    def encode(self, prompt: str) -> torch.Tensor:
        ids = torch.tensor([self.token_ids(prompt)], device=self.device)
        out = self.encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        return out.hidden_states[HIDDEN_LAYER][0]


def caption_pair(cond: torch.Tensor, uncond: torch.Tensor) -> tuple[dict, dict]:
    """Two captions [n, width] -> batch-1 conds of one padded length, each with its true length."""
    length = max(cond.shape[0], uncond.shape[0])

    def padded(feats: torch.Tensor) -> dict:
        out = feats.new_zeros(1, length, feats.shape[1])
        out[0, : feats.shape[0]] = feats
        return {"cap_feats": out, "cap_len": torch.tensor([feats.shape[0]], device=feats.device)}

    return padded(cond), padded(uncond)


def captions(cond: dict) -> list[torch.Tensor]:
    """The batch's captions, padding cut off: the list the transformer takes."""
    return [feats[: int(n)] for feats, n in zip(cond["cap_feats"], cond["cap_len"], strict=True)]
