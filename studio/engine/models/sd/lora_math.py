"""The weight change each adapter kind makes, ΔW, as a tensor shaped like the weight it adapts.

- LoRA (Hu et al. 2021): ΔW = up @ down · alpha/rank; a LoCon convolution has a k×k ``down`` and a
  1×1 ``up``; with a CP-decomposed ``mid`` core, ΔW = mid ×₁ up ×₂ down.
- LoHa (LyCORIS; Hyeon-Woo et al. 2022): ΔW = (w1a @ w1b) ⊙ (w2a @ w2b) · alpha/rank.
- LoKr (LyCORIS): ΔW = w1 ⊗ w2 (Kronecker), each factor whole or a low-rank product; alpha/rank
  only when a factor is low-rank.
- full / norm (LyCORIS): the difference itself.

All in float32; the caller multiplies by the prompt's weight and adds to the original weight.
"""

from __future__ import annotations

import torch

from ...devices import is_out_of_memory
from .lora_files import LoraLayer


class LoraShapeError(ValueError):
    """A layer whose tensors do not fit the weight they are meant for (another model family, or a broken file)."""


def _cp(core: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """A CP / Tucker core [r, r, kh, kw] times its two factors wa [r, out], wb [r, in] -> [out, in, kh, kw]."""
    return torch.einsum("ijkl,ir,js->rskl", core, wa.flatten(1), wb.flatten(1))


def _scale(layer: LoraLayer, dim: int | None) -> float:
    given = layer.number("scale")
    if given is not None:
        return given
    alpha = layer.number("alpha")
    return alpha / dim if alpha is not None and dim else 1.0


def _lora(layer: LoraLayer) -> tuple[torch.Tensor, int]:
    down, up, mid = layer.get("down"), layer.get("up"), layer.get("mid")
    rank = down.shape[0]
    if up.shape[1] != rank:
        raise LoraShapeError(f"{layer.key}: lora_up has rank {up.shape[1]}, lora_down {rank}")
    if mid is not None:
        return _cp(mid, up.flatten(1).T, down.flatten(1)), rank
    if up.ndim == 4 and up.shape[2:] != (1, 1):
        raise LoraShapeError(f"{layer.key}: a {tuple(up.shape[2:])} lora_up convolution is not a LoRA layout")
    delta = up.flatten(1) @ down.flatten(1)  # [out, in * kh * kw]
    if down.ndim == 4:
        delta = delta.reshape(up.shape[0], *down.shape[1:])
    return delta, rank


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [out, r] @ b [r, in (× kh × kw)], flattened to 2-D; the caller reshapes it to the weight's shape."""
    return a.flatten(1) @ b.flatten(1)


def _loha(layer: LoraLayer) -> tuple[torch.Tensor, int]:
    w1a, w1b, w2a, w2b = (layer.get(r) for r in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"))
    t1, t2 = layer.get("hada_t1"), layer.get("hada_t2")
    if t1 is not None and t2 is not None:
        return _cp(t1, w1a, w1b) * _cp(t2, w2a, w2b), w1b.shape[0]
    return _product(w1a, w1b) * _product(w2a, w2b), w1b.shape[0]


def _lokr(layer: LoraLayer) -> tuple[torch.Tensor, int | None]:
    dim = None
    w1 = layer.get("lokr_w1")
    if w1 is None:
        w1b = layer.get("lokr_w1_b")
        w1, dim = _product(layer.get("lokr_w1_a"), w1b), w1b.shape[0]
    w2 = layer.get("lokr_w2")
    if w2 is None:
        w2a, w2b, t2 = layer.get("lokr_w2_a"), layer.get("lokr_w2_b"), layer.get("lokr_t2")
        w2, dim = (_cp(t2, w2a, w2b) if t2 is not None else _product(w2a, w2b)), w2b.shape[0]
    if w2.ndim == 4:
        w1 = w1[:, :, None, None]
    elif w1.ndim == 4:
        w1 = w1.flatten(1)
    # A 2-D Kronecker product of [out1, in1] and [out2, in2·kh·kw] lays its columns out as the
    # [out, in, kh, kw] weight does, so the caller's reshape is exact.
    return torch.kron(w1, w2), dim


def layer_delta(layer: LoraLayer, weight_shape: torch.Size) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(ΔW shaped like the weight, Δbias or None), already scaled by alpha/rank (not by the prompt's weight)."""
    try:
        if layer.kind == "lora":
            delta, dim = _lora(layer)
        elif layer.kind == "loha":
            delta, dim = _loha(layer)
        elif layer.kind == "lokr":
            delta, dim = _lokr(layer)
        elif layer.kind == "full":
            delta, dim = layer.get("diff"), None
        else:  # norm
            delta, dim = layer.get("w_norm"), None
        scale = _scale(layer, dim)
    except (RuntimeError, IndexError) as exc:
        # A damaged or foreign file: factors that cannot be multiplied, an empty alpha, a 1-D lora_up...
        if is_out_of_memory(exc):
            raise
        shapes = ", ".join(f"{role} {tuple(t.shape)}" for role, t in layer.tensors.items())
        raise LoraShapeError(f"{layer.key}: its tensors do not fit together ({shapes})") from None
    if delta is not None:
        if delta.numel() != weight_shape.numel():
            raise LoraShapeError(f"{layer.key}: its change has shape {tuple(delta.shape)}, the weight "
                                 f"{tuple(weight_shape)}")
        delta = delta.reshape(weight_shape) * scale
    bias = layer.get("bias")
    bias = bias * scale if bias is not None else layer.get("diff_b") if layer.kind == "full" else layer.get("b_norm")
    return delta, bias
