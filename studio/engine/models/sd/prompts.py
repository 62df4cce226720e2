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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from ...prompt_syntax import BREAK, parse_prompt_weights
from . import XL_FAMILIES
from .adapter_files import AdapterFile
from .embeddings import SDXL_PARTS, SINGLE, Embedding, EmbeddingCache, EmbeddingError, EmbeddingNames, check_fits

CHUNK = 75
COMMA_BACKTRACK = 20  # how far back a full chunk looks for a comma to end on
EMBEDDING_PLACEHOLDER = 0  # the id at an embedding's positions; its token vector is replaced (as A1111 does)


Row = tuple[list[int], list[float], list[tuple[int, Embedding]]]  # 77 ids, 77 weights, (position, embedding)s


class PromptEncoder:
    def __init__(self, family: str, encoders: list, tokenizers: list, device: torch.device, zeros_for_empty: bool):
        self.family = family
        self.encoders = encoders
        self.tokenizers = tokenizers
        self.device = device
        self.zeros_for_empty = zeros_for_empty  # SDXL base: an empty negative prompt means zero conditioning
        # Textual-inversion embeddings a prompt may name (set per run by use_embeddings), the names'
        # tokens per tokenizer, parsed files, and the embeddings the prompts encoded since then used.
        self.embedding_files: tuple[AdapterFile, ...] = ()
        self._names: dict[int, EmbeddingNames] = {}
        self._embeddings = EmbeddingCache()
        self.used_embeddings: dict[str, Embedding] = {}

    def use_embeddings(self, files: Sequence[AdapterFile]) -> None:
        """The embedding files a prompt may name from now on; starts a new list of used ones."""
        if tuple(files) != self.embedding_files:
            self.embedding_files = tuple(files)
            self._names.clear()
        self.used_embeddings = {}

    def token_chunks(self, text: str, tokenizer) -> list[tuple[list[int], list[float]]]:
        """``text`` as 77-long rows of (token ids, weights): [start] + up to 75 tokens + [end] + padding."""
        return [(ids, weights) for ids, weights, _ in self.token_rows(text, tokenizer)]

    def token_rows(self, text: str, tokenizer) -> list[Row]:
        """``text`` as 77-long rows of token ids and weights, and where each embedding's vectors go.

        An embedding's n vectors take n positions (their ids are placeholders, replaced after the
        token lookup) and move whole to the next chunk when they do not fit, as in AUTOMATIC1111.
        """
        comma = tokenizer(",", add_special_tokens=False, verbose=False).input_ids[-1]
        names = self._embedding_names(tokenizer)
        chunks: list[Row] = []
        ids: list[int] = []
        weights: list[float] = []
        fixes: list[tuple[int, Embedding]] = []
        last_comma = -1

        def close(cut: int) -> None:
            nonlocal ids, weights, fixes, last_comma
            chunks.append((ids[:cut], weights[:cut], [(p, e) for p, e in fixes if p < cut]))
            ids, weights, fixes, last_comma = ids[cut:], weights[cut:], [(p - cut, e) for p, e in fixes if p >= cut], -1

        for segment, weight in parse_prompt_weights(text):
            if segment is BREAK:
                if ids:
                    close(len(ids))
                continue
            tokens = tokenizer(segment, add_special_tokens=False, truncation=False, verbose=False).input_ids
            position = 0
            while position < len(tokens):
                if len(ids) == CHUNK:
                    close(last_comma + 1 if last_comma >= 0 and CHUNK - last_comma <= COMMA_BACKTRACK else CHUNK)
                found = names.match(tokens, position) if names else None
                if found is not None:
                    embedding = self._embedding(found[0])
                    if len(ids) + embedding.count > CHUNK:
                        close(len(ids))
                    fixes.append((len(ids), embedding))
                    ids += [EMBEDDING_PLACEHOLDER] * embedding.count
                    weights += [weight] * embedding.count
                    position += found[1]
                    continue
                token = tokens[position]
                if token == comma:
                    last_comma = len(ids)
                ids.append(token)
                weights.append(weight)
                position += 1
        if ids or not chunks:
            close(len(ids))
        bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        return [([bos, *r, eos] + [pad] * (CHUNK - len(r)), [1.0, *w, 1.0] + [1.0] * (CHUNK - len(w)),
                 [(p + 1, e) for p, e in f]) for r, w, f in chunks]

    def _embedding_names(self, tokenizer) -> EmbeddingNames:
        names = self._names.get(id(tokenizer))
        if names is None:
            def tokenize(name: str) -> list[int]:
                return tokenizer(name, add_special_tokens=False, truncation=False, verbose=False).input_ids

            names = self._names[id(tokenizer)] = EmbeddingNames(self.embedding_files, tokenize)
        return names

    def _embedding(self, file: AdapterFile) -> Embedding:
        embedding = self._embeddings.load(file.path, file.name)
        widths = [_text_model(e).embeddings.token_embedding.embedding_dim for e in self.encoders]
        check_fits(embedding, widths, self.family)
        self.used_embeddings.setdefault(embedding.name, embedding)
        return embedding

    def chunk_count(self, text: str) -> int:
        return len(self.token_chunks(text, self.tokenizers[0]))

    @torch.no_grad()
    def _encode(self, text: str, chunks: int, clip_skip: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        contexts, pooled = [], None
        # The refiner's one encoder is the base's second (OpenCLIP bigG): an SDXL embedding's clip_g part.
        parts = {"sdxl": SDXL_PARTS, "sdxl_refiner": SDXL_PARTS[1:]}.get(self.family, (SINGLE,))
        for encoder, tokenizer, part in zip(self.encoders, self.tokenizers, parts, strict=True):
            rows = self.token_rows(text, tokenizer)
            rows += self.token_rows("", tokenizer) * (chunks - len(rows))
            ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=self.device)
            weights = torch.tensor([r[1] for r in rows], dtype=torch.float32, device=self.device)
            xl = self.family in XL_FAMILIES
            with _vectors_inserted(encoder, [r[2] for r in rows], part):
                out = encoder(ids, output_hidden_states=xl or clip_skip > 1)
            if xl:  # clip skip does not apply (the runner refuses it for SDXL)
                hidden = out.hidden_states[-2]  # SDXL reads its encoders' penultimate layer (the refiner's one)
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
        chunks = self.chunk_count(prompt)
        with _negative_prompt():
            chunks = max(chunks, self.chunk_count(negative))
        layers = len(_text_model(self.encoders[0]).encoder.layers)
        if clip_skip > layers:
            raise ValueError(f"clip skip {clip_skip} is more than the text encoder's {layers} layers")
        ctx, pooled = self._encode(prompt, chunks, clip_skip)
        if self.zeros_for_empty and not negative.strip():
            nctx, npooled = torch.zeros_like(ctx), None if pooled is None else torch.zeros_like(pooled)
        else:
            with _negative_prompt():
                nctx, npooled = self._encode(negative, chunks, clip_skip)
        cond, uncond = {"context": ctx}, {"context": nctx}
        if pooled is not None:
            cond["pooled"], uncond["pooled"] = pooled, npooled
        return cond, uncond


@contextmanager
def _negative_prompt() -> Iterator[None]:
    """An embedding error while reading the negative prompt names that field."""
    try:
        yield
    except EmbeddingError as exc:
        raise EmbeddingError(exc.message, "negative_prompt") from None


@contextmanager
def _vectors_inserted(encoder, fixes: list[list[tuple[int, Embedding]]], part: str) -> Iterator[None]:
    """Put each embedding's vectors (its ``part``: clip_l, clip_g or the one tensor) in place of its placeholder
    tokens' vectors, after the token lookup and before the position embeddings are added.

    Without embeddings nothing is hooked, so a plain prompt runs exactly the encoder's own path.
    """
    places = [(row, position, e.parts[part]) for row, found in enumerate(fixes) for position, e in found]
    if not places:
        yield
        return

    def insert(module, args, vectors: torch.Tensor) -> torch.Tensor:
        vectors = vectors.clone()
        for row, position, vecs in places:
            vectors[row, position:position + len(vecs)] = vecs.to(vectors.device, vectors.dtype)
        return vectors

    handle = _text_model(encoder).embeddings.token_embedding.register_forward_hook(insert)
    try:
        yield
    finally:
        handle.remove()


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
