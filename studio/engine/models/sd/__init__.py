"""Stable Diffusion 1.x, 2.x and XL checkpoints, run through the studio's own engine.

diffusers and transformers provide only the networks (UNet, VAE, text encoders);
sampling, guidance, inpainting and step history are the engine's. Importing this
package needs neither library: discovery and detection read file headers only,
and loading says what to install when the optional ``[sd]`` extra is missing.
"""

from __future__ import annotations

FAMILIES = ("sd1", "sd2", "sdxl", "sdxl_refiner")
FAMILY_LABELS = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "sdxl_refiner": "SDXL refiner",
                 "unknown": "Stable Diffusion?"}
XL_FAMILIES = ("sdxl", "sdxl_refiner")  # OpenCLIP bigG penultimate states, pooled embedding and size time ids


def family_label(family: str, inpainting: bool = False) -> str:
    """What the model picker shows for a family: "SD 1.x", or "SD 1.x inpainting" for a 9-channel UNet."""
    label = FAMILY_LABELS.get(family, FAMILY_LABELS["unknown"])
    return f"{label} inpainting" if inpainting else label
