"""GGUF files as people download flow models in: city96's ComfyUI-GGUF conversions and llama.cpp encoders.

A diffusion model converted by ComfyUI-GGUF keeps its original state-dict names (``double_blocks.0...``
for Flux, ``joint_blocks.0...`` for SD3, ``layers.0...`` for Z-Image, written as architecture ``lumina2``);
a tensor whose shape was flattened for the quantiser carries its real shape in the metadata field
``comfy.gguf.orig_shape.<name>``. Text encoders converted by llama.cpp (``t5`` / ``t5encoder`` / ``qwen3``)
use llama.cpp's tensor names, mapped back here to the transformers names the safetensors versions of
the same encoders carry, so a family's loader sees one naming whatever the format.

Quantised blocks are expanded with the ``gguf`` package's numpy dequantisers, one tensor at a time, so the
peak memory is the dequantised model plus one float32 tensor.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelLoadError

INSTALL_HINT = "pip install gguf==0.19.0  (or: pip install 'diffusion-studio[sd]')"
ORIG_SHAPE_FIELD = "comfy.gguf.orig_shape."
# Element types stored as plain numbers: read directly, not through a dequantiser.
PLAIN_TYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
TEXT_ARCHITECTURES = ("t5", "t5encoder", "qwen3")

# llama.cpp's names -> transformers' T5EncoderModel names (enc.blk.N.<part> -> encoder.block.N.<part>).
T5_PARTS = {
    "attn_q": "layer.0.SelfAttention.q", "attn_k": "layer.0.SelfAttention.k",
    "attn_v": "layer.0.SelfAttention.v", "attn_o": "layer.0.SelfAttention.o",
    "attn_rel_b": "layer.0.SelfAttention.relative_attention_bias", "attn_norm": "layer.0.layer_norm",
    "ffn_gate": "layer.1.DenseReluDense.wi_0", "ffn_up": "layer.1.DenseReluDense.wi_1",
    "ffn_down": "layer.1.DenseReluDense.wo", "ffn_norm": "layer.1.layer_norm",
}
T5_TOP = {"token_embd": "shared", "enc.output_norm": "encoder.final_layer_norm"}
# llama.cpp's names -> transformers' Qwen3 names (blk.N.<part> -> model.layers.N.<part>). llama.cpp does not
# permute Qwen3's query/key rows (only its "llama" architecture does), so the weights need no reordering.
QWEN3_PARTS = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "ffn_norm": "post_attention_layernorm",
}
QWEN3_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
BLOCK_NAME = re.compile(r"^(enc\.)?blk\.(\d+)\.(\w+)\.(weight|bias)$")


def require_gguf():
    try:
        import gguf
    except ImportError:
        raise ModelLoadError(f"reading .gguf files needs the gguf package, which is not installed: {INSTALL_HINT}") \
            from None
    return gguf


@dataclass(frozen=True)
class GGUFTensor:
    name: str  # the state-dict name (mapped to transformers' names for llama.cpp text encoders)
    kind: str  # the GGML type's name: "Q4_K", "Q8_0", "F16", ...
    shape: tuple[int, ...]  # the tensor's real shape, row-major like torch
    index: int  # position in the file's tensor list


class GGUFFile:
    """One .gguf file's header (architecture, tensor names, types and shapes); tensors read on demand."""

    def __init__(self, path: Path):
        gguf = require_gguf()
        self.path = Path(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._reader = gguf.GGUFReader(str(self.path))
            self.architecture = self._string_field("general.architecture")
            self.tensors = [self._describe(i, t) for i, t in enumerate(self._reader.tensors)]
        except ModelLoadError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError) as exc:
            raise ModelLoadError(_damaged_message(self.path, exc)) from None
        except OSError as exc:
            raise ModelLoadError(f"{self.path.name} cannot be read ({exc.strerror or exc})") from None

    def _string_field(self, key: str) -> str | None:
        field = self._reader.get_field(key)
        if field is None or not field.data:
            return None
        return bytes(field.parts[field.data[-1]]).decode("utf-8", errors="replace")

    def _orig_shape(self, name: str) -> tuple[int, ...] | None:
        field = self._reader.get_field(ORIG_SHAPE_FIELD + name)
        if field is None:
            return None
        return tuple(int(field.parts[i][0]) for i in field.data)

    def _describe(self, index: int, t) -> GGUFTensor:
        logical = tuple(int(d) for d in reversed(t.shape.tolist()))  # GGUF lists dimensions fastest first
        shape = self._orig_shape(t.name) or logical
        if int(np.prod(shape)) != int(t.n_elements):
            raise ModelLoadError(f"{self.path.name}: tensor {t.name[:80]!r} claims the shape {shape} but holds "
                                 f"{t.n_elements} numbers; the file is damaged, download it again")
        return GGUFTensor(self._state_dict_name(t.name), t.tensor_type.name, shape, index)

    def _state_dict_name(self, name: str) -> str:
        if self.architecture in ("t5", "t5encoder"):
            return _mapped(name, T5_PARTS, T5_TOP, "encoder.block")
        if self.architecture == "qwen3":
            return _mapped(name, QWEN3_PARTS, QWEN3_TOP, "model.layers")
        return name

    def read(self, tensor: GGUFTensor, dtype: torch.dtype | None) -> torch.Tensor:
        """One tensor, dequantised (to float32 when ``dtype`` is None and the file holds quantised blocks)."""
        gguf = require_gguf()
        raw = self._reader.tensors[tensor.index]
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # torch warns that the memory-mapped array is read-only
                if tensor.kind in ("F32", "F16", "F64"):
                    out = torch.from_numpy(np.ascontiguousarray(raw.data)).clone()
                elif tensor.kind == "BF16":
                    out = torch.from_numpy(np.ascontiguousarray(raw.data).view(np.int16)).clone().view(torch.bfloat16)
                else:
                    try:
                        values = gguf.quants.dequantize(raw.data, raw.tensor_type)
                    except NotImplementedError:
                        raise ModelLoadError(
                            f"{self.path.name}: tensor {tensor.name[:80]!r} is stored as GGUF {tensor.kind}, which "
                            "the studio cannot read yet; use a Q8_0, Q6_K, Q5_K, Q4_K, Q4_0 or F16 version of this "
                            "model") from None
                    out = torch.from_numpy(values)
        except ModelLoadError:
            raise
        except (ValueError, IndexError, TypeError) as exc:
            raise ModelLoadError(_damaged_message(self.path, exc)) from None
        out = out.reshape(tensor.shape)
        if dtype is not None:
            out = out.to(dtype)
        elif out.dtype == torch.float64:
            out = out.float()
        return out

    def iter_tensors(self, names: set[str], dtype: torch.dtype | None) -> Iterator[tuple[str, torch.Tensor]]:
        for tensor in self.tensors:
            if tensor.name in names:
                yield tensor.name, self.read(tensor, dtype)


def _mapped(name: str, parts: dict[str, str], top: dict[str, str], blocks: str) -> str:
    """A llama.cpp tensor name in transformers' words; a name outside the table is kept as it is."""
    m = BLOCK_NAME.match(name)
    if m and m.group(3) in parts:
        return f"{blocks}.{m.group(2)}.{parts[m.group(3)]}.{m.group(4)}"
    stem, dot, leaf = name.rpartition(".")
    if dot and stem in top:
        return f"{top[stem]}.{leaf}"
    return name


def _damaged_message(path: Path, exc: BaseException) -> str:
    text = str(exc)
    unknown = re.search(r"(\d+)\)? is not a valid GGMLQuantizationType", text)
    if unknown:
        return (f"{path.name} holds tensors of GGUF type {unknown.group(1)}, which the installed gguf package does "
                "not know; use a Q8_0, Q6_K, Q5_K, Q4_K, Q4_0 or F16 version of this model (or a newer gguf)")
    if "magic" in text.lower():
        return f"{path.name} is not a GGUF file (it does not start with 'GGUF'); the download may have failed"
    if "version" in text.lower():
        return f"{path.name} is a GGUF file of a version this studio cannot read ({text[:80]})"
    return (f"{path.name} could not be read as GGUF ({type(exc).__name__}: {text[:120]}); the file is probably "
            "truncated or damaged: download it again")
