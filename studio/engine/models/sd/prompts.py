"""Prompt -> text conditioning, with AUTOMATIC1111-style chunking past 77 tokens.

CLIP reads 77 tokens (start, 75 words' worth, end). A longer prompt is split
into 75-token chunks, each wrapped in start/end tokens and padded, encoded on its
own, and the hidden states concatenated along the sequence: the UNet's cross
attention takes any length. The prompt and the negative prompt are padded to the
same number of chunks with empty chunks, as the engine batches them together.
"""

from __future__ import annotations

import torch

CHUNK = 75


class PromptEncoder:
    def __init__(self, family: str, encoders: list, tokenizers: list, device: torch.device, zeros_for_empty: bool):
        self.family = family
        self.encoders = encoders
        self.tokenizers = tokenizers
        self.device = device
        self.zeros_for_empty = zeros_for_empty  # SDXL base: an empty negative prompt means zero conditioning

    def token_chunks(self, text: str, tokenizer) -> list[list[int]]:
        """Token ids of ``text`` as 77-long rows: [start] + up to 75 tokens + [end] + padding."""
        ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids
        rows = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)] or [[]]
        bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        return [[bos, *r, eos] + [pad] * (CHUNK - len(r)) for r in rows]

    def chunk_count(self, text: str) -> int:
        return len(self.token_chunks(text, self.tokenizers[0]))

    @torch.no_grad()
    def _encode(self, text: str, chunks: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        contexts, pooled = [], None
        for encoder, tokenizer in zip(self.encoders, self.tokenizers, strict=True):
            rows = self.token_chunks(text, tokenizer)
            rows += self.token_chunks("", tokenizer) * (chunks - len(rows))
            ids = torch.tensor(rows, dtype=torch.long, device=self.device)
            out = encoder(ids, output_hidden_states=self.family == "sdxl")
            if self.family == "sdxl":
                hidden = out.hidden_states[-2]  # SDXL reads both encoders' penultimate layer
                if hasattr(out, "text_embeds"):
                    pooled = out.text_embeds[:1]  # the first chunk's pooled embedding, as AUTOMATIC1111 does
            else:
                hidden = out.last_hidden_state
            contexts.append(hidden.reshape(1, -1, hidden.shape[-1]))
        return torch.cat(contexts, dim=-1).float(), None if pooled is None else pooled.float()

    def encode(self, prompt: str, negative: str) -> tuple[dict, dict]:
        chunks = max(self.chunk_count(prompt), self.chunk_count(negative))
        ctx, pooled = self._encode(prompt, chunks)
        if self.zeros_for_empty and not negative.strip():
            nctx, npooled = torch.zeros_like(ctx), None if pooled is None else torch.zeros_like(pooled)
        else:
            nctx, npooled = self._encode(negative, chunks)
        cond, uncond = {"context": ctx}, {"context": nctx}
        if pooled is not None:
            cond["pooled"], uncond["pooled"] = pooled, npooled
        return cond, uncond
