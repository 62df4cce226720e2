"""An upscaler model file (ESRGAN, Real-ESRGAN, SwinIR, DAT, ... as spandrel detects them) loaded safely.

The weights are read without running code from the file (safetensors, or ``torch.load`` with
``weights_only=True``); spandrel recognises the architecture from the key names and shapes. A file
that is damaged, pickles code, or holds some other network is a ModelLoadError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..devices import is_out_of_memory
from ..models.errors import ModelLoadError
from ..models.sd.safety import load_pickle, read_checkpoint
from .spandrel_import import import_spandrel

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt")


@dataclass(frozen=True)
class UpscalerInfo:
    name: str  # the file's stem, as the user names it
    path: Path
    architecture: str  # spandrel's name for it: "ESRGAN", "SwinIR", ...
    scale: int  # the network's own factor (a 4x network asked for 2x is followed by a Lanczos reduction)
    tags: tuple[str, ...]  # size tags spandrel reads off the weights ("64nf", "23nb", ...)


class UpscalerModel:
    """One loaded upscaler network on a device: float [1, 3, h, w] in 0..1 -> [1, 3, h*scale, w*scale]."""

    def __init__(self, descriptor: Any, info: UpscalerInfo, device: torch.device):
        self.info = info
        self.device = device
        self._descriptor = descriptor.to(device).eval()
        self.dtype = _fast_dtype(descriptor, device)
        if self.dtype != torch.float32:
            self._descriptor = self._descriptor.to(self.dtype)

    @property
    def scale(self) -> int:
        return self.info.scale

    @torch.inference_mode()
    def __call__(self, tile: torch.Tensor) -> torch.Tensor:
        out = self._run(tile)
        if self.dtype != torch.float32 and not torch.isfinite(out).all():
            # Some ESRGAN files overflow in half precision: the rest of the run goes in fp32.
            self.dtype = torch.float32
            self._descriptor = self._descriptor.to(torch.float32)
            out = self._run(tile)
        return out

    def _run(self, tile: torch.Tensor) -> torch.Tensor:
        try:
            return self._descriptor(tile.to(self.device, self.dtype))
        except RuntimeError as exc:  # weights that loaded but do not compute (a damaged or odd file)
            if is_out_of_memory(exc):
                raise
            raise ModelLoadError(f"{self.info.path.name} could not run on an image ({_short(exc)})") from None


def _fast_dtype(descriptor: Any, device: torch.device) -> torch.dtype:
    """fp16, else bf16 on CUDA when the architecture supports it (spandrel says); fp32 elsewhere."""
    if device.type != "cuda":
        return torch.float32
    if descriptor.supports_half:
        return torch.float16
    if descriptor.supports_bfloat16 and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an upscaler file, unwrapped from the containers releases use (``params_ema``, ...)."""
    spandrel = import_spandrel()
    if not path.is_file():
        raise ModelLoadError(f"upscaler file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        state: object = read_checkpoint(path)
    elif suffix in PICKLE_SUFFIXES:
        state = load_pickle(path)
    else:
        raise ModelLoadError(f"{path.name}: upscaler files are .safetensors or .pth, not {suffix or 'no suffix'!r}")
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path.name} holds a {type(state).__name__}, not a dictionary of weights")
    state = spandrel.canonicalize_state_dict(state)
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelLoadError(f"{path.name} holds no weights")
    return tensors


def load_upscaler(path: str | Path, device: torch.device) -> UpscalerModel:
    """The upscaler network in ``path`` on ``device``; ModelLoadError (naming the file) for anything else."""
    path = Path(path)
    spandrel = import_spandrel()
    state = read_state_dict(path)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise ModelLoadError(f"{path.name} is not an upscaler model: its weights match none of the architectures "
                             "spandrel knows (ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT, SPAN, ...)") from None
    except Exception as exc:  # noqa: BLE001 - an architecture's loader meets shapes it cannot build from
        raise ModelLoadError(f"{path.name} looks like an upscaler but its weights do not fit together "
                             f"({type(exc).__name__}: {_short(exc)}); the file may be damaged") from None
    arch = descriptor.architecture.name
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelLoadError(f"{path.name} is a {arch} {descriptor.purpose.lower()} model, not an upscaler")
    if descriptor.purpose == "FaceSR":
        raise ModelLoadError(f"{path.name} is a {arch} face restoration model, not an upscaler")
    if not isinstance(descriptor.scale, int) or not 1 <= descriptor.scale <= 16:
        raise ModelLoadError(f"{path.name} is a {arch} model whose weights say it enlarges {descriptor.scale!r} "
                             "times; the file may be damaged")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelLoadError(f"{path.name} is a {arch} model for {descriptor.input_channels}-channel images; "
                             "the studio upscales RGB images")
    info = UpscalerInfo(path.stem, path, arch, int(descriptor.scale), tuple(descriptor.tags))
    return UpscalerModel(descriptor, info, device)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."
