"""SD 3.x prompts -> the MMDiT's joint context and pooled vector, as StableDiffusion3Pipeline builds them.

CLIP-L and CLIP-G read the prompt (77 tokens each) and give their penultimate layer's states, joined
along the feature axis (768 + 1280) and zero-padded to T5-XXL's width (4096); T5 reads up to 256 tokens.
The context is the CLIP part followed by the T5 part along the sequence; the pooled vector is CLIP-L's and
CLIP-G's projected end-of-text embeddings side by side (2048). Without a T5 file the T5 part is zeros, as
the pipeline does when it has no third encoder.

Long prompts: the CLIP part is chunked as AUTOMATIC1111 chunks SD prompts (75 tokens a chunk, each
wrapped in start/end tokens, the chunks' states joined along the sequence; the MMDiT's joint attention
takes any length), and the pooled vector is the first chunk's; T5 is truncated at 256 tokens, as the
pipeline truncates it. A prompt of up to 75 CLIP tokens gives exactly the pipeline's conditioning.
Emphasis ``(word:1.3)`` weights the CLIP states (A1111's rule); T5 reads the text without the weights.
"""

from __future__ import annotations

import torch

from ...prompt_syntax import BREAK, parse_prompt_weights
from ..sd.prompts import PromptEncoder, emphasise

T5_TOKENS = 256  # the pipeline's max_sequence_length


def plain_text(prompt: str) -> str:
    """The prompt with emphasis brackets and BREAK taken out: what T5 reads."""
    return "".join(" " if text is BREAK else text for text, _ in parse_prompt_weights(prompt))


class SD3PromptEncoder:
    """CLIP-L, CLIP-G (transformers CLIPTextModelWithProjection) and T5-XXL (T5EncoderModel, or None)."""

    def __init__(self, clip_l, clip_g, t5, tokenizers: tuple, joint_dim: int, device: torch.device,
                 t5_tokens: int = T5_TOKENS):
        self.clips = (clip_l, clip_g)
        self.t5 = t5
        self.clip_tokenizers = tokenizers[:2]
        self.t5_tokenizer = tokenizers[2]
        self.joint_dim = joint_dim
        self.device = device
        self.t5_tokens = t5_tokens
        # The SD prompt encoder's tokenisation: chunks, emphasis, A1111's comma rule.
        self._rows = PromptEncoder("sdxl", list(self.clips), list(self.clip_tokenizers), device, False)

    def encode(self, prompt: str, negative: str) -> tuple[dict, dict]:
        chunks = max(len(self._rows.token_rows(prompt, self.clip_tokenizers[0])),
                     len(self._rows.token_rows(negative, self.clip_tokenizers[0])))
        cond = self._encode(prompt, chunks)
        uncond = self._encode(negative, chunks)
        return cond, uncond

    @torch.no_grad()
    def _encode(self, text: str, chunks: int) -> dict:
        states, pooled = [], []
        for encoder, tokenizer in zip(self.clips, self.clip_tokenizers, strict=True):
            rows = self._rows.token_rows(text, tokenizer)
            rows += self._rows.token_rows("", tokenizer) * (chunks - len(rows))
            ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=self.device)
            weights = torch.tensor([r[1] for r in rows], dtype=torch.float32, device=self.device)
            out = encoder(ids, output_hidden_states=True)
            hidden = emphasise(out.hidden_states[-2].float(), weights)
            states.append(hidden.reshape(1, -1, hidden.shape[-1]))
            pooled.append(out.text_embeds[:1].float())
        clip = torch.cat(states, dim=-1)
        if clip.shape[-1] > self.joint_dim:
            raise ValueError(f"the CLIP encoders' widths ({clip.shape[-1]}) exceed the transformer's context width "
                             f"({self.joint_dim}): these text encoder files belong to another model")
        clip = torch.nn.functional.pad(clip, (0, self.joint_dim - clip.shape[-1]))
        context = torch.cat([clip, self._t5(text)], dim=1)
        return {"context": context, "pooled": torch.cat(pooled, dim=-1)}

    def _t5(self, text: str) -> torch.Tensor:
        if self.t5 is None:
            return torch.zeros(1, self.t5_tokens, self.joint_dim, device=self.device)
        ids = self.t5_tokenizer(plain_text(text), padding="max_length", max_length=self.t5_tokens, truncation=True,
                                add_special_tokens=True, return_tensors="pt").input_ids.to(self.device)
        return self.t5(ids)[0].float()
