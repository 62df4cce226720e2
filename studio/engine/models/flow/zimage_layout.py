"""Z-Image's original file layout (Tongyi-MAI's release, ComfyUI's split and all-in-one files) <-> diffusers.

The transformer's original names differ from diffusers' in a few places: one fused ``attention.qkv``
where diffusers has to_q / to_k / to_v, ``attention.out`` for ``attention.to_out.0``, ``q_norm`` /
``k_norm`` for ``norm_q`` / ``norm_k``, and the patch embedder and final layer without diffusers' per-patch-
size dictionaries ("2-1": patch 2, one frame). Some files also carry an unused ``norm_final.weight``.
The Qwen3 encoder file is transformers' Qwen3ForCausalLM layout (``model.`` in front, no head), and the
VAE file is Flux's ``ae.safetensors`` in the original autoencoder names.

ComfyUI's all-in-one checkpoints put the three under ``model.diffusion_model.``,
``text_encoders.qwen3_4b.transformer.`` and ``vae.``. Configs come from the shipped ones in
studio/resources/flow_configs/zimage, with the sizes read from the weights' shapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from ....resource_files import resource_dir
from ..errors import ModelLoadError
from .parts import ModelFiles
from .tensors import read_key_shapes, read_state_dict

CONFIGS = resource_dir("flow_configs", "zimage")
TRANSFORMER_PREFIX = "model.diffusion_model."
ENCODER_PREFIX = "text_encoders.qwen3_4b.transformer."
VAE_PREFIX = "vae."
# original prefix -> diffusers prefix, at the start of a key
_HEADS = (("x_embedder.", "all_x_embedder.2-1."), ("final_layer.", "all_final_layer.2-1."))
# inside a block
_ATTENTION = ((".attention.out.", ".attention.to_out.0."), (".attention.q_norm.", ".attention.norm_q."),
              (".attention.k_norm.", ".attention.norm_k."))
_UNUSED = ("norm_final.weight",)


def shipped_config(part: str) -> dict:
    return json.loads((CONFIGS / part / "config.json").read_text())


# -- the transformer ----------------------------------------------------------------------------
def transformer_to_diffusers(state: Mapping[str, torch.Tensor], heads: int, kv_heads: int) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key in _UNUSED:
            continue
        for old, new in _HEADS:
            if key.startswith(old):
                key = new + key[len(old):]
        for old, new in _ATTENTION:
            key = key.replace(old, new)
        if key.endswith(".attention.qkv.weight"):
            head_dim = value.shape[0] // (heads + 2 * kv_heads)
            q, k, v = value.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim])
            stem = key[: -len("qkv.weight")]
            out.update({stem + "to_q.weight": q, stem + "to_k.weight": k, stem + "to_v.weight": v})
        else:
            out[key] = value
    return out


def transformer_to_original(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """diffusers names -> the original ones (``prefix`` in front), for tests and exports."""
    out = {}
    for key, value in state.items():
        if key.endswith((".attention.to_k.weight", ".attention.to_v.weight")):
            continue
        if key.endswith(".attention.to_q.weight"):
            stem = key[: -len("to_q.weight")]
            value = torch.cat([state[stem + "to_q.weight"], state[stem + "to_k.weight"], state[stem + "to_v.weight"]])
            key = stem + "qkv.weight"
        for old, new in _HEADS:
            if key.startswith(new):
                key = old + key[len(new):]
        for old, new in _ATTENTION:
            key = key.replace(new, old)
        out[prefix + key] = value.detach().clone().contiguous()
    return out


def transformer_config(state: Mapping[str, torch.Tensor]) -> dict:
    """The shipped (Turbo's) config with every size the original weights' shapes tell."""
    config = {k: v for k, v in shipped_config("transformer").items() if not k.startswith("_")}
    try:
        embed = state["x_embedder.weight"]
        head_dim = state["layers.0.attention.q_norm.weight"].shape[0]
        qkv_rows = state["layers.0.attention.qkv.weight"].shape[0]
        cap_width = state["cap_embedder.0.weight"].shape[0]
    except KeyError as exc:
        raise ModelLoadError(f"not a Z-Image transformer: it has no {exc.args[0]} weight") from None
    dim = embed.shape[0]
    heads = dim // head_dim
    patch = config["all_patch_size"][0]
    config.update(dim=dim, in_channels=embed.shape[1] // (patch * patch), n_heads=heads,
                  n_kv_heads=(qkv_rows // head_dim - heads) // 2, cap_feat_dim=cap_width,
                  n_layers=_count(state, "layers."), n_refiner_layers=_count(state, "noise_refiner."))
    if head_dim != sum(config["axes_dims"]):  # the released model's split of a head into (frame, row, column)
        config["axes_dims"] = [head_dim // 4, head_dim * 3 // 8, head_dim * 3 // 8]
    return config


def transformer_from_original(state: Mapping[str, torch.Tensor], dtype: torch.dtype, name: str) -> torch.nn.Module:
    from diffusers import ZImageTransformer2DModel

    config = transformer_config(state)
    with torch.device("meta"):
        model = ZImageTransformer2DModel(**config)
    weights = transformer_to_diffusers(state, config["n_heads"], config["n_kv_heads"])
    _load(model, weights, name, "transformer")
    return model.to(dtype)


# -- the Qwen3 text encoder ---------------------------------------------------------------------
def qwen3_to_original(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """transformers' Qwen3Model names -> the Qwen3ForCausalLM file layout ComfyUI ships (``model.`` in front)."""
    return {prefix + "model." + k: v.detach().clone().contiguous() for k, v in state.items()}


def qwen3_from_original(state: Mapping[str, torch.Tensor], dtype: torch.dtype, name: str) -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3Model

    weights = {k.removeprefix("model."): v for k, v in state.items() if not k.startswith("lm_head.")}
    try:
        embed = weights["embed_tokens.weight"]
        head_dim = weights["layers.0.self_attn.q_norm.weight"].shape[0]
        q_rows = weights["layers.0.self_attn.q_proj.weight"].shape[0]
        k_rows = weights["layers.0.self_attn.k_proj.weight"].shape[0]
        ffn = weights["layers.0.mlp.gate_proj.weight"].shape[0]
    except KeyError as exc:
        raise ModelLoadError(f"{name}: not a Qwen3 text encoder (it has no {exc.args[0]} weight)") from None
    config = {k: v for k, v in shipped_config("text_encoder").items() if k != "architectures"}
    config.update(vocab_size=embed.shape[0], hidden_size=embed.shape[1], head_dim=head_dim, intermediate_size=ffn,
                  num_attention_heads=q_rows // head_dim, num_key_value_heads=k_rows // head_dim,
                  num_hidden_layers=_count(weights, "layers."))
    config["max_window_layers"] = config["num_hidden_layers"]
    qwen_config = Qwen3Config(**config)
    with torch.device("meta"):
        model = Qwen3Model(qwen_config)
    _load(model, weights, name, "Qwen3 text encoder", rebuild=("rotary_emb",))
    return model.to(dtype)


# -- the VAE ------------------------------------------------------------------------------------
def vae_to_original_flux(vae: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL -> Flux's ae.safetensors names (the original autoencoder's)."""
    from ..sd.detect import VAE
    from ..sd.original_layout import vae_to_original

    return {prefix + k.removeprefix(VAE): v.detach().clone().contiguous()
            for k, v in vae_to_original(vae.state_dict(), vae.config).items()}


def vae_from_original(state: Mapping[str, torch.Tensor], dtype: torch.dtype, name: str) -> torch.nn.Module:
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    config = {k: v for k, v in shipped_config("vae").items() if not k.startswith("_")}
    try:
        levels = _count(state, "encoder.down.")
        config.update(
            block_out_channels=[state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in range(levels)],
            layers_per_block=_count(state, "encoder.down.0.block."),
            latent_channels=state["encoder.conv_out.weight"].shape[0] // 2,
            in_channels=state["encoder.conv_in.weight"].shape[1],
            use_quant_conv="quant_conv.weight" in state, use_post_quant_conv="post_quant_conv.weight" in state,
            down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels)
    except KeyError as exc:
        raise ModelLoadError(f"{name}: not an autoencoder in the original layout (no {exc.args[0]})") from None
    if config["latent_channels"] != 16:
        raise ModelLoadError(f"{name}: a VAE with {config['latent_channels']} latent channels; Z-Image needs Flux's "
                             "16-channel VAE (ae.safetensors)")
    with torch.device("meta"):
        model = AutoencoderKL(**config)
    _load(model, convert_ldm_vae_checkpoint(dict(state), config), name, "VAE")
    return model.to(dtype)


# -- the parts of one model -----------------------------------------------------------------------
def split_parts(path: Path, files: ModelFiles, dtype: torch.dtype) -> tuple[torch.nn.Module, ...]:
    """(transformer, Qwen3 encoder, VAE) from a single file and the encoder / VAE files given beside it."""
    name = path.name
    keys = read_key_shapes(path)
    prefix = TRANSFORMER_PREFIX if any(k.startswith(TRANSFORMER_PREFIX) for k in keys) else ""
    transformer = transformer_from_original(read_state_dict(path, prefix=prefix, dtype=dtype), dtype, name)
    encoder_path = files.text_encoders.get("qwen3")
    if encoder_path is not None:
        encoder = encoder_from_path(Path(encoder_path), dtype)
    elif any(k.startswith(ENCODER_PREFIX) for k in keys):
        encoder = qwen3_from_original(read_state_dict(path, prefix=ENCODER_PREFIX, dtype=dtype), dtype, name)
    else:
        raise ModelLoadError(f"{name} holds only the diffusion model: give its Qwen3 text encoder "
                             "(qwen_3_4b.safetensors, ComfyUI's models/text_encoders) with --text-encoder")
    if files.vae is not None:
        vae = vae_from_path(Path(files.vae), dtype)
    elif any(k.startswith(VAE_PREFIX) for k in keys):
        vae = vae_from_original(read_state_dict(path, prefix=VAE_PREFIX, dtype=dtype), dtype, name)
    else:
        raise ModelLoadError(f"{name} holds no VAE: give Flux's ae.safetensors (ComfyUI's models/vae) with --vae")
    return transformer, encoder, vae


def encoder_from_path(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    if path.is_dir():
        from transformers import Qwen3Model

        return Qwen3Model.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    keys = read_key_shapes(path)
    prefix = ENCODER_PREFIX if any(k.startswith(ENCODER_PREFIX) for k in keys) else ""
    return qwen3_from_original(read_state_dict(path, prefix=prefix, dtype=dtype), dtype, path.name)


def vae_from_path(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    if path.is_dir():
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(str(path), torch_dtype=dtype, local_files_only=True)
    keys = read_key_shapes(path)
    prefix = next((p for p in (VAE_PREFIX, "first_stage_model.") if any(k.startswith(p) for k in keys)), "")
    return vae_from_original(read_state_dict(path, prefix=prefix, dtype=dtype), dtype, path.name)


def _count(state: Mapping[str, object], prefix: str) -> int:
    """How many numbered children ``prefix``N. has."""
    numbers = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)
               and k[len(prefix):].split(".")[0].isdigit()}
    return max(numbers) + 1 if numbers else 0


def _load(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], name: str, part: str,
          rebuild: tuple[str, ...] = ()) -> None:
    """Fill a meta-device model with ``weights``, refusing missing, extra or misshapen ones by name."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected {extra[0]}"
        raise ModelLoadError(f"{name}: its {part} {what} ({len(missing)} missing, {len(extra)} unexpected weights); "
                             "the file is incomplete or another model's")
    for key, value in expected.items():
        if tuple(weights[key].shape) != tuple(value.shape):
            raise ModelLoadError(f"{name}: {part} weight {key} has shape {tuple(weights[key].shape)}, "
                                 f"expected {tuple(value.shape)}")
    model.load_state_dict(dict(weights), strict=True, assign=True)
    for child in rebuild:  # modules whose non-persistent buffers a meta-device build leaves empty
        old = getattr(model, child)
        setattr(model, child, type(old)(config=model.config))
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise ModelLoadError(f"internal: {part} {leftover[0]} has no value after loading {name}")
