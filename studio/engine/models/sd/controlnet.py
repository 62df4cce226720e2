"""ControlNet (Zhang et al. 2023) for Stable Diffusion models: loading, and steering a run.

A ControlNet is a copy of its UNet's encoder that reads a control image (edges, a scribble,
...) and returns one residual per down-block output and one for the middle block; the UNet
adds them to its own. Files come as diffusers folders (config.json + weights) or as single
files in the original layout (see controlnet_layout.py), built here offline from the loaded
model's UNet config. The network class is diffusers' ControlNetModel; the scheduling (which
unit steers which step) is ours.

A run's units are gathered into a ControlState that the runner hands to the model; the
model's network asks it for residuals at each evaluation. A unit steers the steps whose
fraction of the run, step index / steps (0-based, as sd-webui-controlnet counts it), lies in
[start, end]. The control image goes to the cond and uncond halves of a CFG batch alike
(diffusers' default, not its guess mode).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ....io.controlnet_infotext import format_unit
from ...control_preprocess import control_map
from ...request import GenerationRequest, RequestError
from ..errors import ModelLoadError
from . import FAMILY_LABELS
from .adapter_files import AdapterLibrary
from .controlnet_layout import (
    CONTEXT_FAMILIES,
    ORIGINAL_PREFIX,
    config_from_shapes,
    context_width,
    is_diffusers_layout,
    is_original_layout,
    original_to_diffusers,
)

KEEP_LOADED = 4  # ControlNets kept in memory per runner (an SD 1.5 one is 1.4 GB in fp32)
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                "diffusion_pytorch_model.bin")


def _family_words(width: int | None, xl: bool) -> str:
    family = CONTEXT_FAMILIES.get(width or 0)
    if family is not None and (family == "sdxl") == xl:
        return FAMILY_LABELS[family]
    return f"a model with {width}-wide text context" + (" and SDXL's size embedding" if xl else "")


def _check_fits(name: str, width: int | None, xl: bool, unet) -> None:
    """Refuse a ControlNet made for another family, naming both."""
    ours = int(unet.config.cross_attention_dim) if not isinstance(unet.config.cross_attention_dim, list | tuple) \
        else int(unet.config.cross_attention_dim[0])
    our_xl = unet.config.get("addition_embed_type") == "text_time"
    if width is None:
        raise ModelLoadError(f"{name} has no cross-attention weights: it is not a ControlNet the studio can use")
    if width != ours or xl != our_xl:
        raise ModelLoadError(f"{name} is a ControlNet for {_family_words(width, xl)}; the loaded model is "
                             f"{_family_words(ours, our_xl)}. Choose a ControlNet made for it")


def load_controlnet(path: Path, unet: torch.nn.Module) -> torch.nn.Module:
    """A ControlNetModel from a diffusers folder or a single file, checked against ``unet``; on the CPU, in the
    file's dtype. Every problem with the file is a ModelLoadError naming it; ``unet`` is never touched."""
    from .load import require_sd_libraries

    require_sd_libraries()
    path = Path(path)
    if path.is_dir():
        return _load_folder(path, unet)
    return _load_file(path, unet)


def _load_folder(folder: Path, unet) -> torch.nn.Module:
    from diffusers import ControlNetModel

    from .detect import read_config

    config = read_config(folder / "config.json")
    if config.get("_class_name", "ControlNetModel") != "ControlNetModel":
        raise ModelLoadError(f"{folder.name} holds a {config.get('_class_name')!s:.60}, not a ControlNetModel")
    width = config.get("cross_attention_dim")
    _check_fits(folder.name, width if isinstance(width, int) else None,
                config.get("addition_embed_type") == "text_time", unet)
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelLoadError(f"{folder.name} has a config.json but no weights ({WEIGHT_FILES[0]}); "
                             "download the folder again")
    variant = "fp16" if not (folder / WEIGHT_FILES[0]).is_file() and (folder / WEIGHT_FILES[1]).is_file() else None
    try:
        return ControlNetModel.from_pretrained(str(folder), local_files_only=True, variant=variant).eval()
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"{folder.name}: could not load its weights ({str(exc).splitlines()[0][:200]})") from exc


def _load_file(path: Path, unet) -> torch.nn.Module:
    from diffusers import ControlNetModel

    from .safety import read_checkpoint, read_safetensors_header

    if path.suffix.lower() == ".safetensors":  # check names and shapes before reading the weights
        shapes = {k: s for k, (_, s) in read_safetensors_header(path).items()}
        state = None
    else:
        state = read_checkpoint(path)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
    shapes = _controlnet_part(shapes, path.name, unet.config)
    _check_fits(path.name, context_width(shapes), "add_embedding.linear_1.weight" in shapes, unet)
    config = config_from_shapes(shapes, unet.config)
    if state is None:
        state = read_checkpoint(path)
    weights = _controlnet_part(state, path.name, unet.config)
    try:
        with torch.device("meta"):
            net = ControlNetModel(**config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"{path.name}: its weights describe no ControlNet the studio can build ({exc})") from exc
    target = net.state_dict()
    missing = [k for k in target if k not in weights]
    extra = [k for k in weights if k not in target]
    if missing or extra:
        which = f"lacks {len(missing)} weights (e.g. {missing[0]})" if missing else \
            f"has {len(extra)} weights a ControlNet of this model has no place for (e.g. {extra[0]})"
        raise ModelLoadError(f"{path.name} {which}; the file is incomplete or not a ControlNet for this model")
    for k, v in target.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise ModelLoadError(f"{path.name}: weight {k} has shape {tuple(weights[k].shape)}, expected "
                                 f"{tuple(v.shape)} for a ControlNet of this model")
    net.load_state_dict(weights, strict=True, assign=True)
    return net.eval()


def _controlnet_part(state: dict, name: str, unet_config) -> dict:
    """The ControlNet's weights under diffusers' names, from either single-file layout."""
    if any(k.startswith(ORIGINAL_PREFIX) for k in state):
        state = {k: v for k, v in state.items() if k.startswith(ORIGINAL_PREFIX)}  # full checkpoints hold a UNet too
    if "lora_controlnet" in state:  # Stability's Control-LoRA marker
        raise ModelLoadError(f"{name} is a Control-LoRA; the studio runs full ControlNets only")
    if is_diffusers_layout(state):
        return dict(state)
    if not is_original_layout(state):
        raise ModelLoadError(f"{name} is not a ControlNet: it has no control image encoder "
                             "(input_hint_block or controlnet_cond_embedding weights)")
    try:
        return original_to_diffusers(state, unet_config)
    except KeyError as exc:
        raise ModelLoadError(f"{name}: weight {exc.args[0]!r} has no place in a ControlNet of the loaded model; "
                             "the file is for another model family or not a ControlNet") from None


def model_hash(path: Path) -> str:
    """AUTOMATIC1111's short model hash (sha256 of 64 KiB at 1 MiB, 8 hex digits), which sd-webui-controlnet
    writes after a ControlNet's name; a diffusers folder is hashed by its weights file."""
    path = Path(path)
    if path.is_dir():
        path = next((path / f for f in WEIGHT_FILES if (path / f).is_file()), path / WEIGHT_FILES[0])
    try:
        with path.open("rb") as f:
            f.seek(0x100000)
            return hashlib.sha256(f.read(0x10000)).hexdigest()[:8]
    except OSError:
        return "NOFILE"


class ControlNetCache:
    """Loaded ControlNets by file (path, size and change time), the most recently used kept."""

    def __init__(self, keep: int = KEEP_LOADED):
        self.keep = keep
        self._nets: OrderedDict[tuple, torch.nn.Module] = OrderedDict()

    @staticmethod
    def _key(path: Path, device, dtype) -> tuple:
        stat = path.stat()
        return str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(device), str(dtype)

    def get(self, path: Path, unet: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
        key = self._key(Path(path), device, dtype)
        if key in self._nets:
            self._nets.move_to_end(key)
            return self._nets[key]
        net = load_controlnet(Path(path), unet).to(device, dtype).requires_grad_(False)
        self._nets[key] = net
        while len(self._nets) > self.keep:
            self._nets.popitem(last=False)
        return net


@dataclass(frozen=True, eq=False)
class ActiveUnit:
    net: torch.nn.Module
    hint: torch.Tensor  # [1, 3, H, W] in [0, 1], the model's device and weights dtype
    weight: float
    start: float
    end: float


class ControlState:
    """One run's ControlNet units; the runner sets ``step`` before each sampler step."""

    def __init__(self, units: list[ActiveUnit], total: int, infotext: tuple[tuple[str, str], ...] = ()):
        self.units = units
        self.total = max(total, 1)
        self.step = 0
        self.infotext = infotext  # ("ControlNet 0", "Module: ..."), ... for the parameters text

    def active(self) -> list[ActiveUnit]:
        fraction = self.step / self.total
        return [u for u in self.units if u.start <= fraction <= u.end and u.weight != 0]

    def residuals(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, added: dict | None) -> dict:
        """The UNet's extra keyword arguments for this evaluation: the units' residuals summed ({} if none steer)."""
        down, mid = None, None
        for unit in self.active():
            hint = unit.hint.expand(x.shape[0], *unit.hint.shape[1:])
            d, m = unit.net(x, t, encoder_hidden_states=context, controlnet_cond=hint,
                            conditioning_scale=unit.weight, added_cond_kwargs=added, return_dict=False)
            down = list(d) if down is None else [a + b for a, b in zip(down, d, strict=True)]
            mid = m if mid is None else mid + m
        if down is None:
            return {}
        return {"down_block_additional_residuals": tuple(down), "mid_block_additional_residual": mid}


def prepare_control(model, request: GenerationRequest, adapters: AdapterLibrary, cache: ControlNetCache,
                    total: int) -> ControlState | None:
    """The run's ControlState, set on the model (None, and cleared, when the request has no units)."""
    if not request.controlnets:
        if hasattr(model, "control"):
            model.control = None
        return None
    if not hasattr(model, "control"):
        raise RequestError("controlnets", f"model {model.info.name!r} cannot use ControlNets; "
                                          "choose a Stable Diffusion model or remove the units")
    units, infotext = [], []
    for i, unit in enumerate(request.controlnets):
        found = adapters.find("controlnet", unit.model)
        label = f"{found.name} [{model_hash(found.path)}]"
        infotext.append((f"ControlNet {i}", format_unit(unit, label, request.width, request.height)))
        try:
            net = cache.get(found.path, model.unet, model.device, model.weights_dtype)
        except (ModelLoadError, OSError) as exc:
            raise RequestError("controlnets", f"controlnet {i + 1}: {exc}") from exc
        hint = control_map(unit.image, unit.preprocessor, request.width, request.height)
        tensor = torch.from_numpy(np.ascontiguousarray(hint.transpose(2, 0, 1)))[None]
        units.append(ActiveUnit(net, tensor.to(model.device, model.weights_dtype), unit.weight, unit.start, unit.end))
    model.control = ControlState(units, total, tuple(infotext))
    return model.control
