"""Random-weight ControlNets built in code from a UNet, saved in both on-disk layouts (tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import torch

from .controlnet_layout import diffusers_to_original


def build_random_controlnet(unet: torch.nn.Module, *, seed: int = 0,
                            hint_channels: tuple[int, ...] = (16, 32, 96, 256)) -> torch.nn.Module:
    """diffusers' ControlNetModel.from_unet with seeded weights everywhere.

    A trained ControlNet's output convolutions start at zero and learn; left at zero here its
    residuals would vanish and no test could see it steer, so they are drawn at random too.
    """
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=hint_channels)
    zeroed = [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for conv in zeroed:
            torch.nn.init.normal_(conv.weight, std=0.3)
            torch.nn.init.normal_(conv.bias, std=0.05)
    return net.eval()


def save_controlnet_folder(net: torch.nn.Module, folder: Path) -> Path:
    """A diffusers ControlNet folder: config.json and diffusion_pytorch_model.safetensors."""
    net.save_pretrained(str(folder))
    return Path(folder)


def save_controlnet_single_file(net: torch.nn.Module, unet_config, path: Path, *, prefix: bool = True) -> Path:
    """An original-layout single file (``control_model.input_blocks...``), as A1111's models/ControlNet holds;
    ``.safetensors``, or a weights-only ``.pth`` pickle for other suffixes."""
    state = diffusers_to_original(net.state_dict(), unet_config)
    if not prefix:
        state = {k.removeprefix("control_model."): v for k, v in state.items()}
    state = {k: v.detach().clone().contiguous() for k, v in state.items()}
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"format": "pt"})
    else:
        torch.save(state, path)
    return path
