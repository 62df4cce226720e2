"""Reading a flow model's weights from the formats people download them in, without running code from them.

``read_state_dict(path, prefix=, dtype=)`` reads .safetensors (fp8 e4m3fn / e5m2 and ComfyUI's scaled fp8
included), .gguf (quantised blocks expanded), and .pt/.bin/.ckpt/.pth through ``torch.load(weights_only=True)``
(a pickle that asks to run code is refused); a folder reads its safetensors shards. Tensors are read and cast
one at a time, so loading an fp8 or GGUF file costs the upcast model plus one tensor, never twice the model.

``read_key_shapes(path)`` reads headers only (detection, discovery); ``read_storage(path)`` also says how
each tensor is stored, which the model card reports (see precision.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

from ..errors import ModelLoadError
from ..sd.safety import PICKLE_SUFFIXES, load_pickle, read_safetensors_header
from .gguf_file import GGUFFile

GGUF_SUFFIXES = (".gguf",)
WEIGHT_SUFFIXES = (".safetensors", *GGUF_SUFFIXES, *PICKLE_SUFFIXES)

# safetensors dtype names -> the words the model card uses
SAFETENSORS_STORAGE = {
    "F8_E4M3": "fp8 e4m3fn", "F8_E5M2": "fp8 e5m2", "BF16": "bf16", "F16": "fp16", "F32": "fp32", "F64": "fp64",
}
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
# ComfyUI's scaled fp8 files: "<layer>.weight" in fp8 times "<layer>.scale_weight" (the older layout, marked by
# an empty "scaled_fp8" tensor) or "<layer>.weight_scale" (its newer per-layer quantisation layout).
WEIGHT_SCALE_SUFFIXES = (".scale_weight", ".weight_scale")
# Entries of scaled fp8 files that are not weights: the marker, input scales for fp8 matmuls, layer configs.
NOT_WEIGHTS = ("scaled_fp8",)
NOT_WEIGHT_SUFFIXES = (".scale_input", ".input_scale", ".comfy_quant")


def read_state_dict(
    path: str | Path, *, prefix: str = "", dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` (stripped from the names), cast to ``dtype``, on the CPU.

    ``dtype=None`` keeps each tensor as stored, except that quantised GGUF blocks and scaled fp8 weights come
    out as float32 (their stored form is not a tensor a network can use). Every problem with the file is a
    ModelLoadError naming it.
    """
    path = _existing(path)
    if path.is_dir():
        out: dict[str, torch.Tensor] = {}
        for shard in _shards(path):
            out.update(read_state_dict(shard, prefix=prefix, dtype=dtype))
        return out
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(path, prefix, dtype)
    if suffix in GGUF_SUFFIXES:
        gguf = GGUFFile(path)
        wanted = {t.name for t in gguf.tensors if t.name.startswith(prefix)}
        return {name[len(prefix):]: t for name, t in gguf.iter_tensors(wanted, dtype)}
    if suffix in PICKLE_SUFFIXES:
        return _read_pickled(path, prefix, dtype)
    raise ModelLoadError(_unsupported(path))


def read_key_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from the file's header alone (a zip-format .pt is memory-mapped, not read)."""
    return {name: shape for name, (_, shape) in read_storage(path).items()}


def read_storage(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (how it is stored: "bf16", "fp8 e4m3fn", "GGUF Q4_K", ..., shape), from headers."""
    path = _existing(path)
    if path.is_dir():
        out: dict[str, tuple[str, tuple[int, ...]]] = {}
        for shard in _shards(path):
            out.update(read_storage(shard))
        return out
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return {k: (SAFETENSORS_STORAGE.get(dt, dt.lower()), shape)
                for k, (dt, shape) in read_safetensors_header(path).items()}
    if suffix in GGUF_SUFFIXES:
        return {t.name: (f"GGUF {t.kind}", t.shape) for t in GGUFFile(path).tensors}
    if suffix in PICKLE_SUFFIXES:
        return {k: (_torch_storage(v.dtype), tuple(v.shape)) for k, v in _pickled_tensors(path).items()}
    raise ModelLoadError(_unsupported(path))


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"no weights file at {path}")
    return path


def _unsupported(path: Path) -> str:
    return (f"{path.name}: the studio cannot read {path.suffix or 'extension-less'} files; "
            "use .safetensors, .gguf, or a .pt/.bin/.ckpt holding only tensors")


def _shards(folder: Path) -> list[Path]:
    """The weight files of a diffusers-style folder: those its index names, else every .safetensors."""
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            weight_map = json.loads(index.read_text()).get("weight_map", {})
            names = sorted({v for v in weight_map.values() if isinstance(v, str)})
        except (OSError, ValueError, AttributeError):
            raise ModelLoadError(f"{folder.name}/{index.name} is not a valid shard index; download the model "
                                 "folder again") from None
        return [folder / n for n in names]
    files = sorted(folder.glob("*.safetensors"))
    plain = [f for f in files if ".fp16." not in f.name]  # diffusers' fp16 variants beside full-precision files
    files = plain or files
    if not files:
        raise ModelLoadError(f"{folder} holds no .safetensors weights")
    return files


def _read_safetensors(path: Path, prefix: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    header = read_safetensors_header(path)  # clear messages for truncation before safetensors' own
    keys = [k for k in header if k.startswith(prefix)]
    scales = _scale_keys(keys)
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in keys:
                if _not_a_weight(key, scales):
                    continue
                tensor = f.get_tensor(key)
                if key in scales:
                    tensor = _unscaled(tensor, f.get_tensor(scales[key]), key, path)
                if dtype is not None:
                    tensor = tensor.to(dtype)
                out[key[len(prefix):]] = tensor
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path.name} could not be read as safetensors ({str(exc)[:160]}); the file may be "
                             "damaged: download it again") from None
    return out


def _scale_keys(keys: Iterable[str]) -> dict[str, str]:
    """weight name -> the name of its scale, for ComfyUI's scaled fp8 layers."""
    names = set(keys)
    out = {}
    for key in names:
        for suffix in WEIGHT_SCALE_SUFFIXES:
            if key.endswith(suffix):
                weight = key[: -len(suffix)] + ".weight"
                if weight in names:
                    out[weight] = key
    return out


def _not_a_weight(key: str, scales: dict[str, str]) -> bool:
    if not scales:
        return False  # only scaled fp8 files have these companions; elsewhere the names mean something else
    leaf = key.rsplit(".", 1)[-1]
    return (key in NOT_WEIGHTS or key.endswith(NOT_WEIGHT_SUFFIXES) or key in scales.values()
            or leaf in NOT_WEIGHTS)


def _unscaled(weight: torch.Tensor, scale: torch.Tensor, key: str, path: Path) -> torch.Tensor:
    """An fp8 weight times its scale, in float32: one number per tensor, or one per output row."""
    scale = scale.float()
    if scale.numel() == 1:
        return weight.float() * scale.reshape(())
    if weight.ndim >= 1 and scale.numel() == weight.shape[0]:
        return weight.float() * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    raise ModelLoadError(
        f"{path.name}: the scale of {key[:80]!r} has the shape {tuple(scale.shape)}, which the studio cannot apply "
        f"to a weight of shape {tuple(weight.shape)} (block-wise fp8 formats are not supported); use an fp8, "
        "fp16 or GGUF version of this model")


def _pickled_tensors(path: Path) -> dict[str, torch.Tensor]:
    data = load_pickle(path)
    for wrapper in ("state_dict", "model", "module"):  # Lightning, EMA tools and trainers wrap the weights
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} holds a {type(data).__name__}, not a dictionary of weights")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def _read_pickled(path: Path, prefix: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in _pickled_tensors(path).items():
        if key.startswith(prefix):
            cast = tensor.to(dtype) if dtype is not None else tensor
            # a tensor still memory-mapped would keep the whole file mapped: copy it
            out[key[len(prefix):]] = cast.clone() if cast.data_ptr() == tensor.data_ptr() else cast
    return out


def _torch_storage(dtype: torch.dtype) -> str:
    names = {torch.float8_e4m3fn: "fp8 e4m3fn", torch.float8_e5m2: "fp8 e5m2", torch.bfloat16: "bf16",
             torch.float16: "fp16", torch.float32: "fp32", torch.float64: "fp64"}
    return names.get(dtype, str(dtype).removeprefix("torch."))
