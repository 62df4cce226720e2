"""Prompt -> text conditioning, with AUTOMATIC1111-style chunking past 77 tokens.

CLIP reads 77 tokens (start, 75 words' worth, end). A longer prompt is split
into 75-token chunks, each wrapped in start/end tokens and padded, encoded on its
own, and the hidden states concatenated along the sequence: the UNet's cross
attention takes any length. The prompt and the negative prompt are padded to the
same number of chunks with empty chunks, as the engine batches them together.

Emphasis (``(word:1.3)``, ``[word]``, ``BREAK``; see ``studio.engine.prompt_syntax``)
works as in AUTOMATIC1111: each token's hidden state is multiplied by its weight,
then the chunk is rescaled to its unweighted mean, so emphasis shifts attention
between words rather than making the whole prompt louder. A chunk that would split
a phrase ends at the last comma within 20 tokens instead, and the phrase starts the
next chunk. A prompt without the syntax gives exactly the token ids it always did.
"""

from __future__ import annotations

import torch

from ...prompt_syntax import BREAK, parse_prompt_weights

CHUNK = 75
COMMA_BACKTRACK = 20  # how far back a full chunk looks for a comma to end on


class PromptEncoder:
    def __init__(self, family: str, encoders: list, tokenizers: list, device: torch.device, zeros_for_empty: bool):
        self.family = family
        self.encoders = encoders
        self.tokenizers = tokenizers
        self.device = device
        self.zeros_for_empty = zeros_for_empty  # SDXL base: an empty negative prompt means zero conditioning

    def token_chunks(self, text: str, tokenizer) -> list[tuple[list[int], list[float]]]:
        """``text`` as 77-long rows of (token ids, weights): [start] + up to 75 tokens + [end] + padding."""
        comma = tokenizer(",", add_special_tokens=False, verbose=False).input_ids[-1]
        chunks: list[tuple[list[int], list[float]]] = []
        ids: list[int] = []
        weights: list[float] = []
        last_comma = -1
        for segment, weight in parse_prompt_weights(text):
            if segment is BREAK:
                if ids:
                    chunks.append((ids, weights))
                    ids, weights, last_comma = [], [], -1
                continue
            for token in tokenizer(segment, add_special_tokens=False, truncation=False, verbose=False).input_ids:
                if len(ids) == CHUNK:
                    cut = last_comma + 1 if last_comma >= 0 and CHUNK - last_comma <= COMMA_BACKTRACK else CHUNK
                    chunks.append((ids[:cut], weights[:cut]))
                    ids, weights, last_comma = ids[cut:], weights[cut:], -1
                if token == comma:
                    last_comma = len(ids)
                ids.append(token)
                weights.append(weight)
        if ids or not chunks:
            chunks.append((ids, weights))
        bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        return [([bos, *r, eos] + [pad] * (CHUNK - len(r)), [1.0, *w, 1.0] + [1.0] * (CHUNK - len(w)))
                for r, w in chunks]

    def chunk_count(self, text: str) -> int:
        return len(self.token_chunks(text, self.tokenizers[0]))

    @torch.no_grad()
    def _encode(self, text: str, chunks: int, clip_skip: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        contexts, pooled = [], None
        for encoder, tokenizer in zip(self.encoders, self.tokenizers, strict=True):
            rows = self.token_chunks(text, tokenizer)
            rows += self.token_chunks("", tokenizer) * (chunks - len(rows))
            ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=self.device)
            weights = torch.tensor([r[1] for r in rows], dtype=torch.float32, device=self.device)
            out = encoder(ids, output_hidden_states=self.family == "sdxl" or clip_skip > 1)
            if self.family == "sdxl":  # clip skip does not apply (the runner refuses it for SDXL)
                hidden = out.hidden_states[-2]  # SDXL reads both encoders' penultimate layer
                if hasattr(out, "text_embeds"):
                    pooled = out.text_embeds[:1]  # the first chunk's pooled embedding, as AUTOMATIC1111 does
            elif clip_skip > 1:
                # AUTOMATIC1111's clip skip: an earlier layer's states, through the final layer norm
                # the last layer's output gets (hidden_states[-1] is that layer before the norm).
                layer = out.hidden_states[-clip_skip]
                hidden = _text_model(encoder).final_layer_norm(layer)
            else:
                hidden = out.last_hidden_state
            hidden = emphasise(hidden.float(), weights)
            contexts.append(hidden.reshape(1, -1, hidden.shape[-1]))
        return torch.cat(contexts, dim=-1).float(), None if pooled is None else pooled.float()

    def encode(self, prompt: str, negative: str, clip_skip: int = 1) -> tuple[dict, dict]:
        chunks = max(self.chunk_count(prompt), self.chunk_count(negative))
        layers = len(_text_model(self.encoders[0]).encoder.layers)
        if clip_skip > layers:
            raise ValueError(f"clip skip {clip_skip} is more than the text encoder's {layers} layers")
        ctx, pooled = self._encode(prompt, chunks, clip_skip)
        if self.zeros_for_empty and not negative.strip():
            nctx, npooled = torch.zeros_like(ctx), None if pooled is None else torch.zeros_like(pooled)
        else:
            nctx, npooled = self._encode(negative, chunks, clip_skip)
        cond, uncond = {"context": ctx}, {"context": nctx}
        if pooled is not None:
            cond["pooled"], uncond["pooled"] = pooled, npooled
        return cond, uncond


def _text_model(encoder):
    """The CLIP transformer inside a text encoder (transformers 4 nests it as .text_model; 5 does not)."""
    return getattr(encoder, "text_model", encoder)


def emphasise(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scale each token's state [chunks, 77, D] by its weight [chunks, 77], keeping each chunk's mean."""
    if bool((weights == 1).all()):
        return hidden  # bit-exact with the unweighted path
    before = hidden.mean(dim=(1, 2), keepdim=True)
    scaled = hidden * weights[..., None]
    return scaled * (before / scaled.mean(dim=(1, 2), keepdim=True))
