"""Load a Stable Diffusion model from disk, fully offline: a diffusers folder or a single file.

Single files need the family's config files, which ship in studio/resources/sd_configs
(no weights there); ``config_dir`` overrides them (tests pass tiny configs).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from ....resource_files import resource_dir
from ...devices import is_out_of_memory, pick_device
from ...schedules import DiscreteSchedule, alphas_cumprod_from_betas, linear_betas, scaled_linear_betas
from ..errors import ModelLoadError
from . import XL_FAMILIES, family_label
from .detect import INPAINT_CHANNELS, Detection, detect_diffusers_folder, detect_keys, prediction_hint, read_config
from .model import Networks, StableDiffusionModel
from .previews import find_taesd, taesd_search_dirs

CONFIGS = resource_dir("sd_configs")
SHARED_TOKENIZER = CONFIGS / "clip_tokenizer"
DEFAULT_SIZES = {"sd1": 512, "sd2": 768, "sdxl": 1024, "sdxl_refiner": 1024}
INSTALL_HINT = "pip install 'diffusion-studio[sd]'  (or: pip install diffusers transformers accelerate)"


def require_sd_libraries() -> None:
    """Fail with what to install when the optional [sd] extra is missing; never reach a model hub."""
    # Set before the hub client is imported: it reads these once. Loading is local-only anyway.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DISABLE_TELEMETRY", "1")
    missing = []
    for module in ("diffusers", "transformers", "accelerate"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ModelLoadError(f"Stable Diffusion models need {', '.join(missing)}, which are not installed: "
                             f"{INSTALL_HINT}")
    # Their progress bars and advice go to the terminal, not the user; the loader's own checks report problems.
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    for log in (dlog, tlog):
        log.set_verbosity_error()
        log.disable_progress_bar()


def pick_weights_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """fp16 on GPUs (bf16 when asked), fp32 on the CPU, where half precision is slow or unsupported."""
    if isinstance(dtype, torch.dtype):
        return dtype
    named = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if dtype is not None:
        if dtype not in named:
            raise ModelLoadError(f"unknown precision {dtype!r}; choose fp32, fp16 or bf16")
        return named[dtype]
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def load_sd_model(
    path: str | Path, device: str | torch.device = "cpu", *, dtype: str | torch.dtype | None = None,
    config_dir: str | Path | None = None, prediction: str | None = None, name: str | None = None,
    tiny_decoder: bool | str | Path = True,
) -> StableDiffusionModel:
    """Load a diffusers folder or a .safetensors/.ckpt single file as an engine model.

    tiny_decoder: True previews with TAESD when its weights are found on disk (else the linear
    projection), False always uses the projection, a path names a diffusers AutoencoderTiny folder.
    """
    require_sd_libraries()
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"no model at {path}")
    dev = pick_device(device)
    wdtype = pick_weights_dtype(dev, dtype)
    if path.is_dir():
        det, nets, sched_cfg, extra = _load_folder(path)
    else:
        det, nets, sched_cfg, extra = _load_single_file(path, None if config_dir is None else Path(config_dir))
    label = name or f"{path.stem if path.is_file() else path.name} ({family_label(det.family, det.inpainting)})"
    model = assemble(label, det, nets, sched_cfg, extra, dev, wdtype, prediction)
    taesd = find_taesd(det.family, taesd_search_dirs(path)) if tiny_decoder is True else tiny_decoder or None
    if taesd:
        try:
            model.use_tiny_decoder(Path(taesd))
        except (OSError, ValueError, RuntimeError) as exc:
            if tiny_decoder is not True:  # asked for by name: say why it failed; found by search: keep the projection
                raise ModelLoadError(f"could not load the tiny preview decoder at {taesd}: {exc}") from exc
    return model


def assemble(
    label: str, det: Detection, nets: Networks, sched_cfg: dict, index: dict, device: torch.device,
    weights_dtype: torch.dtype, prediction: str | None = None,
) -> StableDiffusionModel:
    """Put loaded networks on the device and behind the engine's model interface."""
    prediction = prediction or det.prediction or sched_cfg.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise ModelLoadError(f"{label}: unsupported prediction type {prediction!r} (epsilon or v_prediction)")
    try:
        for module in (nets.unet, nets.vae, *nets.text_encoders):
            module.to(device, weights_dtype).eval().requires_grad_(False)
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise ModelLoadError(f"{label} does not fit in {device} memory; try fp16, or the CPU") from exc
        raise
    size = DEFAULT_SIZES[det.family]
    if det.family == "sd2" and prediction == "epsilon":
        size = 512  # SD 2.x 512-base
    model = StableDiffusionModel(
        name=label, family=det.family, nets=nets, schedule=schedule_from_config(sched_cfg), prediction=prediction,
        device=device, weights_dtype=weights_dtype, default_size=(size, size),
        # The base's model_index says true, the refiner's false (diffusers follows the file; so do we).
        zeros_for_empty_negative=bool(index.get("force_zeros_for_empty_prompt", det.family == "sdxl")))
    # diffusers shifts "leading" timesteps by this much (1 for SD); kept for an engine that honours it.
    offset = sched_cfg.get("steps_offset", 0)
    model.steps_offset = offset if isinstance(offset, int) and 0 <= offset < 100 else 0
    return model


def schedule_from_config(cfg: dict) -> DiscreteSchedule:
    """The training noise schedule a diffusers scheduler config describes."""
    try:
        n = int(cfg.get("num_train_timesteps", 1000))
        start, end = float(cfg.get("beta_start", 0.00085)), float(cfg.get("beta_end", 0.012))
    except (TypeError, ValueError, OverflowError):
        raise ModelLoadError("the scheduler config's num_train_timesteps, beta_start or beta_end is not a number; "
                             "download the model again") from None
    if not 1 <= n <= 100_000 or not 0 < start < end < 1:
        raise ModelLoadError(f"the scheduler config describes no usable schedule ({n} timesteps, betas {start} to "
                             f"{end}); download the model again")
    kind = cfg.get("beta_schedule", "scaled_linear")
    if cfg.get("rescale_betas_zero_snr"):
        raise ModelLoadError("zero-terminal-SNR schedules are not supported yet")
    if kind == "scaled_linear":
        betas = scaled_linear_betas(n, start, end)
    elif kind == "linear":
        betas = linear_betas(n, start, end)
    else:
        raise ModelLoadError(f"unsupported beta schedule {kind!r} (scaled_linear or linear)")
    return DiscreteSchedule(alphas_cumprod_from_betas(betas))


def _load_single_file(path: Path, config_dir: Path | None):
    from .safety import read_checkpoint, read_safetensors_header
    from .single_file import text_encoders_from_original, unet_from_original, vae_from_original

    if path.suffix.lower() == ".safetensors":  # detect from the header before reading gigabytes
        det = detect_keys({k: s for k, (_, s) in read_safetensors_header(path).items()}, path.name)
        state = read_checkpoint(path)
    else:
        state = read_checkpoint(path)
        det = detect_keys({k: tuple(v.shape) for k, v in state.items()}, path.name)
    det = replace(det, prediction=det.prediction or prediction_hint(path, det.family))
    cfg = config_dir or CONFIGS / det.family
    if not (cfg / "unet" / "config.json").is_file():
        raise ModelLoadError(f"config folder {cfg} lacks unet/config.json; reinstall Diffusion Studio")
    nets = Networks(
        unet=unet_from_original(state, cfg, path.name, INPAINT_CHANNELS if det.inpainting else None),
        vae=vae_from_original(state, cfg, path.name),
        text_encoders=text_encoders_from_original(state, det.family, cfg, path.name),
        tokenizers=_tokenizers(cfg, det.family),
    )
    del state
    return det, nets, read_config(cfg / "scheduler" / "scheduler_config.json", required=False), read_config(
        cfg / "model_index.json", required=False)


def _tokenizers(folder: Path, family: str) -> list:
    """CLIP tokenizer(s): the folder's own files, or the shared vocabulary with the folder's pad token."""
    from transformers import CLIPTokenizer

    subs = {"sdxl": ["tokenizer", "tokenizer_2"], "sdxl_refiner": ["tokenizer_2"]}.get(family, ["tokenizer"])
    out = []
    for sub in subs:
        own = folder / sub
        if (own / "vocab.json").is_file() and (own / "merges.txt").is_file():
            out.append(CLIPTokenizer.from_pretrained(str(own), local_files_only=True))
            continue
        cfg = read_config(own / "tokenizer_config.json", required=False)
        pad = cfg.get("pad_token", "!" if sub == "tokenizer_2" or family == "sd2" else "<|endoftext|>")
        if isinstance(pad, dict):  # older files store AddedToken dicts
            pad = pad.get("content", "<|endoftext|>")
        out.append(CLIPTokenizer.from_pretrained(str(SHARED_TOKENIZER), local_files_only=True, pad_token=pad))
    return out


def _variant(folder: Path) -> str | None:
    """Use the fp16 weight files when a folder has only those."""
    plain = list(folder.glob("*.safetensors")) + list(folder.glob("*.bin"))
    if plain and all(".fp16." in p.name for p in plain):
        return "fp16"
    return None


def _load_folder(folder: Path):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    if not (folder / "unet").is_dir():
        raise ModelLoadError(f"{folder} is not a diffusers Stable Diffusion folder (it has no unet/ subfolder)")
    det = detect_diffusers_folder(folder)
    try:
        unet = UNet2DConditionModel.from_pretrained(
            str(folder), subfolder="unet", local_files_only=True, variant=_variant(folder / "unet"))
        vae = AutoencoderKL.from_pretrained(
            str(folder), subfolder="vae", local_files_only=True, variant=_variant(folder / "vae"))
        encoders = [] if det.family == "sdxl_refiner" else [CLIPTextModel.from_pretrained(
            str(folder / "text_encoder"), local_files_only=True, variant=_variant(folder / "text_encoder"))]
        if det.family in XL_FAMILIES:
            encoders.append(CLIPTextModelWithProjection.from_pretrained(
                str(folder / "text_encoder_2"), local_files_only=True, variant=_variant(folder / "text_encoder_2")))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{folder.name}: could not load its weights ({str(exc).splitlines()[0]})") from exc
    nets = Networks(unet, vae, encoders, _tokenizers(folder, det.family))
    return det, nets, read_config(folder / "scheduler" / "scheduler_config.json", required=False), read_config(
        folder / "model_index.json", required=False)
