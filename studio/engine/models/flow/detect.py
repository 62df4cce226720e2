"""What a weights file or folder is, from its tensor names and shapes alone (headers, never the weights).

A file is one of: a flow diffusion model (SD 3.x, Flux.1 dev / schnell / Fill, Z-Image; in the original
BFL / Stability / ComfyUI naming or in diffusers', with or without ComfyUI's ``model.diffusion_model.`` prefix),
an all-in-one checkpoint (the diffusion model plus encoders under ``text_encoders.<name>.transformer.`` and a VAE
under ``first_stage_model.`` or ``vae.``), a text encoder (CLIP-L, CLIP-G, T5-XXL, Qwen3), a 16-channel VAE, or a
Stable Diffusion 1.x/2.x/XL checkpoint (the SD loader's). Names decide the family, so tiny test models detect like
real ones; shapes decide variants (Flux Fill's wider input) and which CLIP a CLIP is (768 wide: L, 1280: G).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from ..sd.detect import read_config
from .tensors import WEIGHT_SUFFIXES, read_key_shapes

Shapes = Mapping[str, tuple[int, ...]]

DIFFUSION_PREFIXES = ("model.diffusion_model.", "")
VAE_PREFIXES = ("first_stage_model.", "vae.")
CLIP_WIDTHS = {768: "clip_l", 1280: "clip_g"}
FLOW_LATENT_CHANNELS = 16

# diffusers pipeline classes -> family (the folder's model_index.json names one)
PIPELINE_FAMILIES = {
    "FluxPipeline": "flux", "FluxImg2ImgPipeline": "flux", "FluxInpaintPipeline": "flux", "FluxFillPipeline": "flux",
    "FluxKontextPipeline": "flux", "StableDiffusion3Pipeline": "sd3", "StableDiffusion3Img2ImgPipeline": "sd3",
    "StableDiffusion3InpaintPipeline": "sd3", "ZImagePipeline": "zimage", "ZImageImg2ImgPipeline": "zimage",
}
TRANSFORMER_FAMILIES = {"FluxTransformer2DModel": "flux", "SD3Transformer2DModel": "sd3",
                        "ZImageTransformer2DModel": "zimage"}

# Tell-tale names of models the studio does not run, to name them in the error.
OTHER_MODELS = (
    ("single_stream_modulation.", "Flux.2"),
    ("distilled_guidance_layer.", "Chroma"),
    ("layers.0.adaLN_modulation.1.", "Lumina Image 2.0"),
    ("double_layers.", "AuraFlow"),
    ("double_stream_blocks.", "HiDream"),
    ("blocks.0.self_attn.norm_q.", "Wan (a video model)"),
    ("lora_", "a LoRA (put it in a LoRA folder and use it in the prompt; it is not a model)"),
    (".lora_A.", "a LoRA (put it in a LoRA folder and use it in the prompt; it is not a model)"),
    ("control_", "a ControlNet (not a model on its own)"),
)


@dataclass(frozen=True)
class Detected:
    """What one file or folder holds."""

    kind: str  # "diffusion_model", "checkpoint" (all-in-one), "pipeline" (diffusers folder), "text_encoder", "vae",
    #            or "sd" (a Stable Diffusion 1.x/2.x/XL checkpoint: the SD loader's)
    family: str = ""  # "sd3", "flux", "zimage" for the first three kinds
    variant: str = ""  # flux: "dev", "schnell", "fill", "control"; sd3: "3.5-large", "3.5-medium", "3-medium"
    role: str = ""  # text encoders: "clip_l", "clip_g", "t5xxl", "qwen3" ("clip" when the width does not say which)
    prefix: str = ""  # where the diffusion model's (or the lone part's) names start
    naming: str = ""  # "original" (BFL / Stability / ComfyUI) or "diffusers"
    parts: tuple[tuple[str, str], ...] = ()  # a checkpoint's other parts: (role or "vae", name prefix)

    def part_prefix(self, part: str) -> str | None:
        return dict(self.parts).get(part)


def detect_path(path: str | Path) -> Detected:
    """Detect a weights file (from its header) or a diffusers folder (from its configs)."""
    path = Path(path)
    if path.is_dir():
        return detect_folder(path)
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ModelLoadError(f"{path.name} is not a model file the studio reads (.safetensors, .gguf, .ckpt, .pt, "
                             ".bin)")
    return detect_shapes(read_key_shapes(path), path.name)


def detect_shapes(shapes: Shapes, name: str = "the file") -> Detected:
    """Detect from tensor names and shapes; a ModelLoadError naming ``name`` when it is none of the kinds."""
    if any(k.startswith("model.diffusion_model.input_blocks.") for k in shapes):
        return Detected("sd")  # SD 1.x / 2.x / XL: models/sd/detect.py names the family
    for prefix in DIFFUSION_PREFIXES:
        found = _transformer(shapes, prefix, name)
        if found is not None:
            parts = _parts(shapes)
            return Detected("checkpoint" if parts else "diffusion_model", *found, prefix=prefix,
                            naming=_naming(shapes, prefix, found[0]), parts=parts)
    role = encoder_role(shapes, "")
    if role:
        return Detected("text_encoder", role=role)
    for prefix in ("", *VAE_PREFIXES):
        channels = vae_channels(shapes, prefix)
        if channels == FLOW_LATENT_CHANNELS:
            return Detected("vae", prefix=prefix)
        if channels is not None:
            what = "a Stable Diffusion 1.x/2.x/XL VAE" if channels == 4 else f"a VAE with {channels} latent channels"
            raise ModelLoadError(f"{name} is {what}; SD 3.x, Flux and Z-Image need a 16-channel VAE (ae.safetensors "
                                 "or the model's own)")
    parts = _parts(shapes)
    if parts:  # encoders (and a VAE) saved together without a diffusion model
        roles = ", ".join(p for p, _ in parts)
        raise ModelLoadError(f"{name} holds only {roles}, no diffusion model; give it with --text-encoder / --vae, "
                             "or load the diffusion model it belongs to")
    raise ModelLoadError(_unknown(shapes, name))


def _transformer(shapes: Shapes, p: str, name: str) -> tuple[str, str] | None:
    """(family, variant) of a diffusion model whose names start with ``p``, or None."""
    def has(key: str) -> bool:
        return p + key in shapes

    def starts(key: str) -> bool:
        return any(k.startswith(p + key) for k in shapes)

    for marker, what in OTHER_MODELS[:6]:
        if starts(marker):
            raise ModelLoadError(f"{name} is a {what} model, which the studio does not run (it runs SD 3.x, Flux.1 "
                                 "and Z-Image)")
    if starts("double_blocks.") and starts("single_blocks."):
        return "flux", _flux_variant(shapes, p, "img_in.weight", "final_layer.linear.weight", "guidance_in.")
    if starts("single_transformer_blocks.") and starts("transformer_blocks."):
        return "flux", _flux_variant(shapes, p, "x_embedder.weight", "proj_out.weight",
                                     "time_text_embed.guidance_embedder.")
    if starts("joint_blocks."):
        return "sd3", _sd3_variant(shapes, p, r"joint_blocks\.(\d+)\.", ".x_block.attn2.")
    if has("pos_embed.proj.weight") and starts("transformer_blocks.") and (
            has("transformer_blocks.0.attn.add_q_proj.weight") or has("context_embedder.weight")):
        return "sd3", _sd3_variant(shapes, p, r"transformer_blocks\.(\d+)\.", ".attn2.")
    if has("layers.0.adaLN_modulation.0.weight") and starts("cap_embedder."):
        return "zimage", ""
    return None


def _naming(shapes: Shapes, p: str, family: str) -> str:
    originals = {"flux": "double_blocks.", "sd3": "joint_blocks.", "zimage": "x_embedder."}
    return "original" if any(k.startswith(p + originals[family]) for k in shapes) else "diffusers"


def _flux_variant(shapes: Shapes, p: str, img_in: str, out: str, guidance: str) -> str:
    """Fill takes the latent, the masked image's latent and the mask: 6x the output width; Canny/Depth 2x."""
    width_in, width_out = shapes.get(p + img_in, (0, 0)), shapes.get(p + out, (0,))
    if len(width_in) == 2 and width_out and width_out[0]:
        if width_in[1] == 6 * width_out[0]:
            return "fill"
        if width_in[1] == 2 * width_out[0]:
            return "control"
    return "dev" if any(k.startswith(p + guidance) for k in shapes) else "schnell"


def _sd3_variant(shapes: Shapes, p: str, block: str, attn2: str) -> str:
    pattern = re.compile(re.escape(p) + block)
    depth = 1 + max((int(m.group(1)) for k in shapes if (m := pattern.match(k))), default=-1)
    if depth >= 38:
        return "3.5-large"
    return "3.5-medium" if any(attn2 in k for k in shapes) else "3-medium"


def encoder_role(shapes: Shapes, p: str) -> str | None:
    """Which text encoder the names under ``p`` are: clip_l / clip_g / clip / t5xxl / qwen3, or None."""
    if p + "encoder.block.0.layer.0.SelfAttention.q.weight" in shapes:
        return "t5xxl"
    for inner in ("model.", ""):
        if p + inner + "layers.0.self_attn.q_norm.weight" in shapes and p + inner + "layers.0.mlp.gate_proj.weight" \
                in shapes:
            return "qwen3"
    if p + "text_model.encoder.layers.0.self_attn.q_proj.weight" in shapes:
        width = shapes[p + "text_model.encoder.layers.0.self_attn.q_proj.weight"][0]
        return CLIP_WIDTHS.get(width, "clip")
    return None


def vae_channels(shapes: Shapes, p: str) -> int | None:
    """Latent channels of an autoencoder whose names start with ``p`` (original or diffusers naming), or None."""
    conv_in = shapes.get(p + "decoder.conv_in.weight")
    if conv_in is None or len(conv_in) != 4:
        return None
    if not any(k.startswith((p + "encoder.down.", p + "encoder.down_blocks.", p + "decoder.up.",
                             p + "decoder.up_blocks.")) for k in shapes):
        return None
    return conv_in[1]


def _parts(shapes: Shapes) -> tuple[tuple[str, str], ...]:
    """The encoders and VAE stored beside a diffusion model in an all-in-one checkpoint."""
    out: dict[str, str] = {}
    names = sorted({k.split(".")[1] for k in shapes if k.startswith("text_encoders.") and k.count(".") >= 2})
    for enc in names:
        inner = f"text_encoders.{enc}.transformer."
        prefix = inner if any(k.startswith(inner) for k in shapes) else f"text_encoders.{enc}."
        role = encoder_role(shapes, prefix)
        if role == "clip":  # a CLIP of an unusual width: the name it is stored under says which
            role = enc if enc in CLIP_WIDTHS.values() else None
        if role and role not in out:
            out[role] = prefix
    for prefix in VAE_PREFIXES:
        if vae_channels(shapes, prefix) == FLOW_LATENT_CHANNELS:
            out["vae"] = prefix
            break
    return tuple(out.items())


def _unknown(shapes: Shapes, name: str) -> str:
    keys = list(shapes)
    for marker, what in OTHER_MODELS:
        if any(marker in k for k in keys):
            return f"{name} looks like {what}"
    sample = ", ".join(repr(k[:60]) for k in sorted(keys)[:3]) or "no tensors at all"
    return (f"{name} is no model the studio knows: not an SD 3.x / Flux.1 / Z-Image diffusion model, text encoder or "
            f"VAE, nor a Stable Diffusion checkpoint (first names: {sample})")


# --- diffusers folders ---------------------------------------------------------------------------------------
def detect_folder(folder: Path) -> Detected:
    """A diffusers pipeline folder (model_index.json) or a lone transformer folder (config.json + weights)."""
    index = folder / "model_index.json"
    if index.is_file():
        cls = read_config(index).get("_class_name")
        family = PIPELINE_FAMILIES.get(cls) if isinstance(cls, str) else None
        if family is None:
            if isinstance(cls, str) and cls.startswith("StableDiffusion"):
                return Detected("sd")
            raise ModelLoadError(f"{folder.name} is a diffusers {str(cls)[:60]} folder, which the studio does not run")
        config = read_config(folder / "transformer" / "config.json")
        return Detected("pipeline", family, _config_variant(family, config), naming="diffusers")
    config_file = folder / "config.json"
    if config_file.is_file():
        config = read_config(config_file)
        family = TRANSFORMER_FAMILIES.get(config.get("_class_name"))  # type: ignore[arg-type]
        if family is not None:
            return Detected("diffusion_model", family, _config_variant(family, config), naming="diffusers")
        if any(folder.glob("*.safetensors")):  # a transformers encoder or diffusers VAE folder: its weights say
            return detect_shapes(read_key_shapes(folder), folder.name)
    raise ModelLoadError(f"{folder.name} is not a diffusers SD 3.x / Flux.1 / Z-Image folder (no model_index.json "
                         "naming a pipeline, nor a transformer's config.json)")


def _config_variant(family: str, config: dict) -> str:
    if family == "flux":
        channels = config.get("in_channels", 64)
        out = config.get("out_channels") or channels
        if channels == 6 * out:
            return "fill"
        if channels == 2 * out:
            return "control"
        return "dev" if config.get("guidance_embeds") else "schnell"
    if family == "sd3":
        if config.get("num_layers", 0) >= 38:
            return "3.5-large"
        return "3.5-medium" if config.get("dual_attention_layers") else "3-medium"
    return ""
