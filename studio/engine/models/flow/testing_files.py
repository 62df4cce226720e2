"""Writing a state dict the way quantised flow models are published, for tests of every family.

``save_fp8`` writes what ComfyUI's "fp8_e4m3fn" files are (matrices in fp8, the rest as given; with
``scaled=True`` ComfyUI's scaled fp8: each matrix divided by a per-tensor scale saved as ``.scale_weight``,
marked by an empty ``scaled_fp8`` tensor). ``save_gguf`` writes what city96's ComfyUI-GGUF converter writes:
the original names, ``general.architecture`` set to the family ("flux", "sd3", "lumina2" for Z-Image),
matrices quantised, vectors and small tensors in F32.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

SMALL_TENSOR = 1024  # ComfyUI-GGUF keeps tensors of at most this many numbers in F32
GGUF_ARCHITECTURES = {"flux": "flux", "sd3": "sd3", "zimage": "lumina2"}


def save_fp8(state: Mapping[str, torch.Tensor], path: str | Path, *, fp8: torch.dtype = torch.float8_e4m3fn,
             scaled: bool = False) -> Path:
    from safetensors.torch import save_file

    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if tensor.ndim < 2 or not key.endswith(".weight"):
            out[key] = tensor.contiguous()
            continue
        if scaled:
            scale = tensor.float().abs().amax().clamp(min=1e-12) / torch.finfo(fp8).max
            out[key] = (tensor.float() / scale).to(fp8)
            out[key[: -len(".weight")] + ".scale_weight"] = scale.reshape(())
        else:
            out[key] = tensor.to(fp8)
    if scaled:
        out["scaled_fp8"] = torch.empty(0, dtype=fp8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path))
    return Path(path)


def save_gguf(state: Mapping[str, torch.Tensor], path: str | Path, *, family: str, quant: str = "Q8_0",
              architecture: str | None = None) -> Path:
    """``quant`` is a GGML type the gguf package can quantise to (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16, F16)."""
    import gguf

    qtype = gguf.GGMLQuantizationType[quant]
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), architecture or GGUF_ARCHITECTURES.get(family, family))
    for key, tensor in state.items():
        data = tensor.detach().float().numpy()
        kind = qtype
        if data.ndim < 2 or data.size <= SMALL_TENSOR:
            kind = gguf.GGMLQuantizationType.F32
        elif data.shape[-1] % block:
            kind = gguf.GGMLQuantizationType.F16  # the quantiser needs whole blocks along a row
        writer.add_tensor(key, gguf.quants.quantize(np.ascontiguousarray(data), kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)
