"""Fuzz target for textual-inversion embedding files: .safetensors headers and pickled structures of any shape.

Registered in tests/fuzz_targets.py's TARGETS. Every input is written as an embedding file and read as a
prompt naming it reads it: an Embedding that fits the model, or EmbeddingError naming the file.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

KEYS = ("string_to_param", "string_to_token", "*", "emb_params", "clip_l", "clip_g", "name", "step", "<token>")
SHAPES = ((), (0,), (32,), (2, 32), (3, 48), (80, 32), (2, 3, 32), (0, 32), (1, 0))
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "bool", "uint8")


def _tensors() -> SearchStrategy:
    import torch

    def build(parts: tuple[tuple[int, ...], str, int]) -> Any:
        shape, dtype, special = parts
        t = torch.zeros(shape, dtype=getattr(torch, dtype))
        if special and t.numel() and t.is_floating_point():
            t.view(-1)[0] = (float("nan"), float("inf"), 1e30)[special - 1]
        return t

    return st.tuples(st.sampled_from(SHAPES), st.sampled_from(DTYPES), st.integers(0, 3)).map(build)


def _structures() -> SearchStrategy:
    leaves = st.one_of(_tensors(), st.none(), st.integers(-5, 500), st.text(max_size=8))
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))
    return st.recursive(leaves, lambda inner: st.one_of(st.dictionaries(keys, inner, max_size=4),
                                                         st.lists(inner, max_size=3)), max_leaves=6)


def _pickled(data: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def _safetensors(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in tensors.items()})


def embedding_files() -> SearchStrategy:
    """(suffix, bytes): pickles of any structure, safetensors of named tensors, both cut short, and noise."""
    from tests.fuzz_engine_targets import safetensors_files

    pickles = _structures().map(_pickled)
    tensor_dicts = st.dictionaries(st.sampled_from(KEYS), _tensors().filter(lambda t: t.dtype.is_floating_point),
                                   min_size=1, max_size=3).map(_safetensors)
    cut = st.tuples(st.one_of(pickles, tensor_dicts), st.floats(0, 1)).map(lambda p: p[0][: int(len(p[0]) * p[1])])
    return st.one_of(
        st.tuples(st.sampled_from((".pt", ".bin")), st.one_of(pickles, cut, st.binary(max_size=64))),
        st.tuples(st.just(".safetensors"), st.one_of(tensor_dicts, cut, safetensors_files())))


def _run_embedding_file(item: tuple[str, bytes], folder: Path) -> None:
    from studio.engine.models.sd.embeddings import EmbeddingError, check_fits, read_embedding

    suffix, data = item
    path = folder / f"emb{suffix}"
    path.write_bytes(data)
    embedding = read_embedding(path)  # EmbeddingError for anything that is no usable embedding
    assert 1 <= embedding.count <= 75 and all(v.dtype.is_floating_point for v in embedding.parts.values())
    for family, widths in (("sd1", [32]), ("sdxl", [32, 32])):
        with contextlib.suppress(EmbeddingError):  # fits one family or the other, or is refused by name
            check_fits(embedding, widths, family)


def embedding_targets() -> list[Any]:
    import tests.fuzz_targets as h
    from studio.engine.models.sd.embeddings import EmbeddingError

    return [h.FuzzTarget("embedding file", embedding_files(), _run_embedding_file, (EmbeddingError,))]
