"""Textual-inversion embeddings: the files AUTOMATIC1111 users keep in ``embeddings/``, read without running code.

A file holds n learned vectors per text encoder; a word of the prompt equal to the file's
name stands for those n vectors (``prompts.py`` puts them into the token stream). The
layouts read are the ones AUTOMATIC1111 reads:

- A1111's ``.pt``: ``{"string_to_param": {"*": tensor [n, dim]}, "name": ..., "step": ...}``
- one tensor in a ``.safetensors`` (``emb_params``, as A1111 and kohya write SD 1.x/2.x files),
  or in a ``.bin`` (diffusers' ``learned_embeds.bin``: ``{"<token>": tensor [dim]}``)
- SDXL: ``{"clip_l": [n, 768], "clip_g": [n, 1280]}``, one part for each of its two encoders

Pickled files go through ``torch.load(weights_only=True)``; every way a file can be
wrong is an EmbeddingError naming it, and the loaded model is never touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...request import RequestError
from ..errors import ModelLoadError
from .adapter_files import AdapterFile

MAX_VECTORS = 75  # one prompt chunk: an embedding is never split across chunks
SDXL_PARTS = ("clip_l", "clip_g")
SINGLE = ""  # the part name of a file that holds one tensor, for a model with one text encoder


class EmbeddingError(RequestError):
    """An embedding the prompt uses cannot be read or does not fit the model; the message names the file."""

    def __init__(self, message: str, field: str = "prompt"):
        super().__init__(field, message)
        self.message = message


@dataclass(frozen=True, eq=False)
class Embedding:
    name: str
    path: Path
    parts: dict[str, torch.Tensor] = field(repr=False)  # SINGLE, or clip_l and clip_g -> float32 [n, dim] on the CPU
    sha256: str  # of the whole file, as AUTOMATIC1111 hashes embeddings

    @property
    def count(self) -> int:
        """How many tokens' room the embedding takes in a prompt."""
        return next(iter(self.parts.values())).shape[0]

    @property
    def short_hash(self) -> str:
        """The 12 hex digits AUTOMATIC1111 writes in ``TI hashes``."""
        return self.sha256[:12]

    def widths(self) -> str:
        return " + ".join(f"{k} {v.shape[-1]}" if k else str(v.shape[-1]) for k, v in self.parts.items())


def read_embedding(path: str | Path, name: str | None = None) -> Embedding:
    """Parse one embedding file (raises EmbeddingError naming it)."""
    path = Path(path)
    name = name or path.stem
    if not path.is_file():
        raise EmbeddingError(f"the embedding file {path} is missing")
    try:
        data = _read_safetensors(path) if path.suffix.lower() == ".safetensors" else _read_pickle(path)
    except ModelLoadError as exc:
        raise EmbeddingError(f"the embedding {name!r} cannot be read: {exc}") from None
    parts = _parts(data, path.name)
    counts = {v.shape[0] for v in parts.values()}
    if len(counts) > 1:
        raise EmbeddingError(f"{path.name}: its clip_l and clip_g parts have different numbers of vectors "
                             f"({parts['clip_l'].shape[0]} and {parts['clip_g'].shape[0]}); the file is damaged")
    count = counts.pop()
    if not 1 <= count <= MAX_VECTORS:
        raise EmbeddingError(f"{path.name} holds {count} vectors; an embedding takes 1 to {MAX_VECTORS} "
                             "(one prompt chunk)")
    return Embedding(name, path, parts, _sha256(path))


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .safety import read_safetensors_header

    header = read_safetensors_header(path)  # a truncated or corrupt file is named before any tensor is read
    if len(header) > 2 and not set(SDXL_PARTS) <= set(header):
        raise EmbeddingError(_not_an_embedding(path.name, list(header)))
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise EmbeddingError(f"{path.name} could not be read as safetensors ({exc}); the file may be damaged") \
            from None


def _read_pickle(path: Path) -> object:
    from .safety import load_pickle

    return load_pickle(path)


def _parts(data: object, file: str) -> dict[str, torch.Tensor]:
    """The vectors of each text encoder, in AUTOMATIC1111's order of formats."""
    if not isinstance(data, dict) or not data:
        raise EmbeddingError(f"{file} is not a textual-inversion embedding (it holds a {type(data).__name__})")
    if "string_to_param" in data:  # A1111's own .pt
        terms = data["string_to_param"]
        if not isinstance(terms, dict) or len(terms) != 1:
            count = len(terms) if isinstance(terms, dict) else 0
            raise EmbeddingError(f"{file} holds {count} terms in string_to_param; an embedding file has one")
        return {SINGLE: _vectors(next(iter(terms.values())), file)}
    if all(k in data for k in SDXL_PARTS):
        return {k: _vectors(data[k], f"{file} ({k})") for k in SDXL_PARTS}
    if len(data) == 1:  # one tensor: emb_params, or diffusers' {"<token>": vector}
        return {SINGLE: _vectors(next(iter(data.values())), file)}
    raise EmbeddingError(_not_an_embedding(file, [str(k) for k in data]))


def _not_an_embedding(file: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    hint = "; it looks like a LoRA: put it in models/Lora" if any(k.startswith("lora_") for k in keys) else ""
    return (f"{file} is not a textual-inversion embedding: it holds {len(keys)} entries ({shown}) where an "
            f"embedding holds one tensor, or clip_l and clip_g{hint}")


def _vectors(value: object, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        kind = f"a {value.dtype} tensor" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
        raise EmbeddingError(f"{where} is not a textual-inversion embedding: it holds {kind} where vectors belong")
    vectors = value.detach().to("cpu", torch.float32)
    if vectors.dim() == 1:
        vectors = vectors[None]  # one vector, as diffusers saves a single-token embedding
    if vectors.dim() != 2 or vectors.shape[-1] == 0:
        raise EmbeddingError(f"{where}: vectors of shape {tuple(value.shape)}; an embedding is [vectors, width]")
    if not torch.isfinite(vectors).all():
        raise EmbeddingError(f"{where} holds NaN or infinite values; the file is damaged")
    return vectors.contiguous()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_fits(embedding: Embedding, widths: Sequence[int], family: str) -> None:
    """Refuse an embedding made for another model: SDXL needs clip_l and clip_g, others one tensor of the width."""
    parts = SDXL_PARTS if family == "sdxl" else (SINGLE,)
    needed = " + ".join(f"{k} {w}" if k else str(w) for k, w in zip(parts, widths, strict=True))
    fits = set(embedding.parts) == set(parts) and all(
        embedding.parts[k].shape[-1] == w for k, w in zip(parts, widths, strict=True))
    if not fits:
        raise EmbeddingError(
            f"the embedding {embedding.name!r} ({embedding.path.name}) has vectors of width {embedding.widths()}, "
            f"but this model's text encoder{'s take' if len(parts) > 1 else ' takes'} {needed}: it was made for "
            "another kind of model (SD 1.x: 768, SD 2.x: 1024, SDXL: clip_l 768 + clip_g 1280)")


class EmbeddingCache:
    """Parsed embeddings by file, kept while the file is unchanged (same path, mtime and size)."""

    def __init__(self):
        self._parsed: dict[Path, tuple[tuple[int, int], Embedding]] = {}

    def load(self, path: Path, name: str) -> Embedding:
        try:
            stat = path.stat()
        except OSError:
            raise EmbeddingError(f"the embedding {name!r} ({path}) cannot be opened: the file is gone") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        kept = self._parsed.get(path)
        if kept is not None and kept[0] == stamp and kept[1].name == name:
            return kept[1]
        embedding = read_embedding(path, name)
        self._parsed[path] = (stamp, embedding)
        return embedding


class EmbeddingNames:
    """Which embedding a token sequence holds at a position, as AUTOMATIC1111 finds it.

    Each name is tokenized on its own (no start/end tokens); a prompt's token run equal to that
    sequence is the embedding. Candidates are looked up by their first token, longest first.
    """

    def __init__(self, files: Sequence[AdapterFile], tokenize: Callable[[str], list[int]]):
        self._by_first: dict[int, list[tuple[tuple[int, ...], AdapterFile]]] = {}
        for file in files:
            ids = tuple(tokenize(file.name))
            if ids:
                self._by_first.setdefault(ids[0], []).append((ids, file))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda c: len(c[0]), reverse=True)  # stable: the first file of a name wins

    def __bool__(self) -> bool:
        return bool(self._by_first)

    def match(self, tokens: Sequence[int], position: int) -> tuple[AdapterFile, int] | None:
        """(the embedding's file, how many prompt tokens its name spans) at ``position``, or None."""
        for ids, file in self._by_first.get(tokens[position], ()):
            if tuple(tokens[position:position + len(ids)]) == ids:
                return file, len(ids)
        return None


def ti_hashes(embeddings: Sequence[Embedding]) -> str:
    """AUTOMATIC1111's ``TI hashes`` value, quoted as it is written: ``"name: 0123456789ab, ..."``."""
    names = [f"{e.name.replace(':', '').replace(',', '')}: {e.short_hash}" for e in embeddings]
    return json.dumps(", ".join(names), ensure_ascii=False)
