"""Write a tiny random SD 1.5 model, a LoRA and an embedding into an AUTOMATIC1111-style folder.

For trying the studio's LoRA and embedding pickers (and screenshots of them) without real
multi-gigabyte files: the weights are random, so the pictures are noise-like, but every file
is in the layout and format real ones have.

    .venv/bin/python scripts/make_demo_models.py /tmp/demo
    # then Settings → Model folders: /tmp/demo/stable-diffusion-webui/models/Stable-diffusion

Writes:
    stable-diffusion-webui/models/Stable-diffusion/tiny-sd15/   a diffusers folder (random SD 1.x networks)
    stable-diffusion-webui/models/Lora/demo_style.safetensors    a kohya/A1111 LoRA for it (rank 4)
    stable-diffusion-webui/embeddings/demo_embedding.safetensors an A1111 embedding (2 vectors)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

LORA_RANK = 4
LORA_SCALE = 0.5  # large enough that a weight of 1 visibly changes the picture of a random model
EMBEDDING_VECTORS = 2


def kohya_lora(model, rank: int = LORA_RANK, seed: int = 0) -> dict[str, torch.Tensor]:
    """kohya / A1111 keys (``lora_unet_<module path with underscores>.lora_down.weight`` ...) for the
    attention projections of the UNet and the text encoder, with random low-rank weights."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    # kohya names text encoder layers from CLIPTextModel's root: lora_te_text_model_encoder_layers_0_...
    targets = [("lora_unet_", model.unet, ("to_q", "to_k", "to_v", "to_out.0")),
               ("lora_te_text_model_", model.text_encoders[0], ("q_proj", "k_proj", "v_proj", "out_proj"))]
    for prefix, network, names in targets:
        for path, module in network.named_modules():
            if not isinstance(module, torch.nn.Linear) or not path.endswith(names):
                continue
            key = prefix + path.removeprefix("text_model.").replace(".", "_")
            down = torch.randn(rank, module.in_features, generator=generator) * LORA_SCALE
            up = torch.randn(module.out_features, rank, generator=generator) * LORA_SCALE
            tensors[f"{key}.lora_down.weight"] = down
            tensors[f"{key}.lora_up.weight"] = up
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    if not tensors:
        raise RuntimeError("the model has no attention projections to adapt")
    return tensors


def a1111_embedding(model, vectors: int = EMBEDDING_VECTORS, seed: int = 1) -> dict[str, torch.Tensor]:
    """An A1111 .safetensors embedding: ``emb_params`` [vectors, the text encoder's width]."""
    width = model.text_encoders[0].config.hidden_size
    generator = torch.Generator().manual_seed(seed)
    return {"emb_params": torch.randn(vectors, width, generator=generator) * 0.02}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder to write stable-diffusion-webui/ into")
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    from studio.engine.models.sd.testing import build_random, save_diffusers

    webui = args.root / "stable-diffusion-webui"
    checkpoints = webui / "models" / "Stable-diffusion"
    loras = webui / "models" / "Lora"
    embeddings = webui / "embeddings"
    for folder in (checkpoints, loras, embeddings):
        folder.mkdir(parents=True, exist_ok=True)
    model = build_random("sd1")
    save_diffusers(model, checkpoints / "tiny-sd15")
    save_file(kohya_lora(model), str(loras / "demo_style.safetensors"), metadata={"ss_network_module": "networks.lora"})
    save_file(a1111_embedding(model), str(embeddings / "demo_embedding.safetensors"))
    print(f"model folder for Settings: {checkpoints}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
