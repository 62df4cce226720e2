"""LoRA files on disk -> layers: the tensors of each adapted module, grouped, with what kind of adapter they are.

Reading goes through the checkpoint safety helpers (safetensors headers checked
before any tensor is read; pickles only through ``torch.load(weights_only=True)``),
so a damaged or malicious file is refused with a message naming it. Keys are
grouped by the module they adapt, whatever the writer's spelling:

- kohya / AUTOMATIC1111: ``lora_unet_<module>.lora_down.weight`` / ``.lora_up.weight`` /
  ``.alpha`` (``lora_te_``, ``lora_te1_``, ``lora_te2_`` for the text encoders),
  ``.lora_mid.weight`` for LoCon's CP-decomposed convolutions;
- diffusers / PEFT: ``unet.<module>.lora_A.weight`` / ``.lora_B.weight``, ``text_encoder.``,
  ``text_encoder_2.``, the older ``.lora.down.weight``, ``.lora_linear_layer.down.weight``
  and ``…processor.to_q_lora.down.weight`` layouts;
- LyCORIS: LoHa (``hada_w1_a`` …), LoKr (``lokr_w1`` …), full (``diff``) and norm (``w_norm``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .safety import read_checkpoint

# File key endings -> the role the tensor plays. Longest endings are tried first.
ROLES = {
    ".lora_down.weight": "down", ".lora_up.weight": "up", ".lora_mid.weight": "mid",
    ".lora_A.weight": "down", ".lora_B.weight": "up", ".lora_B.bias": "bias",
    ".lora.down.weight": "down", ".lora.up.weight": "up",
    ".lora_linear_layer.down.weight": "down", ".lora_linear_layer.up.weight": "up",
    "_lora.down.weight": "down", "_lora.up.weight": "up",  # diffusers' attention-processor layout
    ".alpha": "alpha", ".scale": "scale",
    ".hada_w1_a": "hada_w1_a", ".hada_w1_b": "hada_w1_b", ".hada_w2_a": "hada_w2_a", ".hada_w2_b": "hada_w2_b",
    ".hada_t1": "hada_t1", ".hada_t2": "hada_t2",
    ".lokr_w1": "lokr_w1", ".lokr_w1_a": "lokr_w1_a", ".lokr_w1_b": "lokr_w1_b",
    ".lokr_w2": "lokr_w2", ".lokr_w2_a": "lokr_w2_a", ".lokr_w2_b": "lokr_w2_b", ".lokr_t2": "lokr_t2",
    ".diff": "diff", ".diff_b": "diff_b", ".w_norm": "w_norm", ".b_norm": "b_norm",
    # Kinds the studio refuses by name (see UNSUPPORTED).
    ".dora_scale": "dora", ".lora_magnitude_vector": "dora", ".lora_magnitude_vector.weight": "dora",
    ".oft_blocks": "oft", ".oft_diag": "oft", ".on_input": "ia3", ".w_a": "glora", ".w_b": "glora",
    ".a1.weight": "glora", ".b1.weight": "glora",
}
_ENDINGS = sorted(ROLES, key=len, reverse=True)
UNSUPPORTED = {
    "dora": "DoRA (weight-decomposed LoRA)",
    "oft": "OFT / BOFT (orthogonal fine-tuning)",
    "ia3": "IA3",
    "glora": "GLoRA",
}
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)$")


@dataclass(frozen=True, eq=False)
class LoraLayer:
    """The tensors that adapt one module: role -> tensor (float32, CPU)."""

    key: str  # the module as the file names it (normalised: no role ending, no processor spelling)
    kind: str  # "lora", "loha", "lokr", "full", "norm"
    tensors: dict[str, torch.Tensor]

    def get(self, role: str) -> torch.Tensor | None:
        return self.tensors.get(role)

    def number(self, role: str) -> float | None:
        t = self.tensors.get(role)
        return None if t is None else float(t.float().reshape(-1)[0])


class LoraFileError(ModelLoadError):
    """A LoRA file that cannot be used; the message names the file and says why."""


def read_lora_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a LoRA file (.safetensors, or a .pt/.ckpt holding only tensors)."""
    path = Path(path)
    try:
        return read_checkpoint(path)
    except ModelLoadError as exc:
        raise LoraFileError(f"LoRA file {path.name}: {exc}") from None


def _split(key: str) -> tuple[str, str] | None:
    for ending in _ENDINGS:
        if key.endswith(ending):
            module = key[: -len(ending)]
            if ending.startswith("_lora."):  # "attn1.processor.to_q_lora" -> "attn1.to_q"
                module = _PROCESSOR.sub(lambda m: "." + ("to_out.0" if m.group(1) == "to_out" else m.group(1)),
                                        module)
            return module, ROLES[ending]
    return None


def _kind(roles: set[str]) -> str | None:
    if {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"} <= roles:
        return "loha"
    if ({"lokr_w1"} <= roles or {"lokr_w1_a", "lokr_w1_b"} <= roles) and (
            {"lokr_w2"} <= roles or {"lokr_w2_a", "lokr_w2_b"} <= roles):
        return "lokr"
    if {"down", "up"} <= roles:
        return "lora"
    if "diff" in roles or "diff_b" in roles:
        return "full"
    if "w_norm" in roles or "b_norm" in roles:
        return "norm"
    return None


def _is_number_tensor(t: torch.Tensor, role: str) -> bool:
    """Floating-point weights; an alpha or scale may also be a whole number (some writers store ``tensor(8)``)."""
    if torch.is_floating_point(t):
        return True
    return role in ("alpha", "scale") and t.dtype not in (torch.bool, torch.complex64, torch.complex128)


def parse_lora(state: dict[str, torch.Tensor], filename: str) -> tuple[list[LoraLayer], list[str]]:
    """The file's layers, and the keys that are not part of any layer the studio can read.

    Raises LoraFileError for adapter kinds the studio does not run (named), and for a file with no LoRA
    layers at all (a checkpoint or an embedding picked by mistake).
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    stray: list[str] = []
    for key, tensor in state.items():
        split = _split(key)
        if split is None:
            stray.append(key)
            continue
        module, role = split
        groups.setdefault(module, {})[role] = tensor
    layers: list[LoraLayer] = []
    for module, tensors in groups.items():
        roles = set(tensors)
        refused = roles & set(UNSUPPORTED)
        if refused:
            what = UNSUPPORTED[sorted(refused)[0]]
            raise LoraFileError(f"LoRA file {filename} is a {what} network, which the studio does not run yet; "
                                "use a LoRA, LoCon, LoHa or LoKr file")
        kind = _kind(roles)
        if kind is None:
            if roles <= {"alpha", "scale"}:
                continue  # an alpha whose layer was pruned: harmless
            stray += [f"{module}.{r}" for r in sorted(roles)]
            continue
        bad = [r for r, t in tensors.items() if not _is_number_tensor(t, r) or not torch.isfinite(t.float()).all()]
        if bad:
            raise LoraFileError(f"LoRA file {filename}: {module}.{bad[0]} holds NaN, infinite or non-number "
                                "values; the file is damaged, download it again")
        layers.append(LoraLayer(module, kind, {r: t.float() for r, t in tensors.items()}))
    if not layers:
        raise LoraFileError(f"{filename} holds no LoRA layers (no lora_down/lora_up, lora_A/lora_B, LoHa or LoKr "
                            "weights); is it a checkpoint or an embedding?")
    return layers, stray
