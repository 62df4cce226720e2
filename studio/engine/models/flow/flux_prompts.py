"""Flux.1's prompt encoding, as FluxPipeline does it.

CLIP-L reads the prompt (77 tokens, padded to full length) and gives its pooled output, which joins the
timestep embedding; T5-XXL reads it too (padded to 512 tokens for dev, 256 for schnell) and its last
hidden states are the sequence the transformer attends to. Both encoders run once per prompt; their
outputs are the cond the velocity network reads.
"""

from __future__ import annotations

import torch

from ..sd.load import SHARED_TOKENIZER
from .t5_tokenizer import load_t5_tokenizer

CLIP_LENGTH = 77
T5_LENGTH = {"dev": 512, "fill": 512, "kontext": 512, "schnell": 256}


def load_clip_tokenizer(folder=None):
    """The CLIP tokenizer of a diffusers folder, or the one shipped for SD (the same vocabulary)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder or SHARED_TOKENIZER), local_files_only=True)


class FluxPromptEncoder:
    """CLIP-L pooled + T5-XXL hidden states for a prompt, on the encoders' device and dtype."""

    def __init__(self, clip: torch.nn.Module, t5: torch.nn.Module, *, max_length: int = 512,
                 clip_tokenizer=None, t5_tokenizer=None):
        self.clip, self.t5 = clip, t5
        self.max_length = max_length
        self.clip_tokenizer = clip_tokenizer or load_clip_tokenizer()
        self.t5_tokenizer = t5_tokenizer or load_t5_tokenizer()

    @torch.no_grad()
    def encode(self, prompt: str) -> dict[str, torch.Tensor]:
        """{"context": [1, max_length, 4096] T5 states, "pooled": [1, 768] CLIP pooled}, float32."""
        clip_ids = self.clip_tokenizer([prompt], padding="max_length", max_length=CLIP_LENGTH, truncation=True,
                                       return_tensors="pt").input_ids
        pooled = self.clip(clip_ids.to(self.clip.device), output_hidden_states=False).pooler_output
        t5_ids = self.t5_tokenizer([prompt], padding="max_length", max_length=self.max_length, truncation=True,
                                   return_tensors="pt").input_ids
        context = self.t5(t5_ids.to(self.t5.device), output_hidden_states=False)[0]
        return {"context": context.float(), "pooled": pooled.float()}
