"""The embedded image-to-image models: Palette (Saharia et al. 2022) trained on the emoji, two tasks of one network.

``palette.safetensors`` (python -m studio.train palette) is the base's 32 px UNet with the
known image joined to its input (palette_inputs.py). The studio offers it twice:

- the emoji colouriser: the init image's luminance in, the whole picture painted in colour;
- emoji inpainting: the canvas image and the mask in, the masked part repainted.

Both reach the network through the inpainting models' contract (inpaint_models.py): the
runner asks ``inpainting_concat`` for the cond entry and adds it to cond and uncond, and
with ``info.inpainting`` it does not blend the known part in at each step (the network
sees it). The prompt, text encoder, schedule and super-resolution stage are the embedded
model's (models/embedded.py): it is that model with another 32 px network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..denoisers import Cond
from ..request import GenerationRequest, RequestError
from .base import ModelInfo, Recommended, unit_to_image
from .embedded import RESOURCE_DIR, EmbeddedModel, _load_state
from .palette_inputs import LUMA, colourise_input, inpaint_input
from .unet import UNet, UNetConfig

WEIGHTS = "palette.safetensors"
COLOURISE, INPAINT = "colourise", "inpaint"
NAMES = {COLOURISE: "Emoji colouriser (Palette, embedded)", INPAINT: "Emoji inpainting (Palette, embedded)"}
# 20 steps as the base. A prompt may name the colours ("a red apple"); CFG 2 lets it speak without the
# washed-out colours of a high scale, and costs nothing more to an empty prompt than to a named one.
RECOMMENDED = {COLOURISE: Recommended(steps=20, cfg_scale=2.0, strength=1.0),
               INPAINT: Recommended(steps=20, cfg_scale=2.0, strength=1.0)}
NETWORK_KEYS = ("text", "tokens", "token_mask", "concat")


def palette_weights_present(root: Path | None = None) -> bool:
    root = RESOURCE_DIR if root is None else root
    return (root / WEIGHTS).is_file() and all((root / f).is_file() for f in PaletteModel.required_files)


def network_config(path: Path) -> UNetConfig:
    """The network a Palette file holds, from its metadata (written by the training's export)."""
    try:
        config = UNetConfig.stored_in(path)
    except ValueError as exc:
        raise ValueError(f"{exc}; export it again with python -m studio.train palette") from exc
    if config is None:
        raise ValueError(f"{path} does not say which network it holds; export it with python -m studio.train palette")
    if not config.concat_channels:
        raise ValueError(f"{path} holds a network without an image input, not a Palette model")
    return config


class PaletteModel(EmbeddedModel):
    """The DiffusionModel protocol over palette.safetensors for one task (COLOURISE or INPAINT)."""

    required_files = ("config.json", "emoji_index.safetensors")

    def __init__(self, task: str, root: Path | None = None, device: str | torch.device = "cpu",
                 weights: Path | None = None):
        root = RESOURCE_DIR if root is None else Path(root)
        if task not in NAMES:
            raise ValueError(f"unknown Palette task {task!r}; choose {COLOURISE} or {INPAINT}")
        self.task = task
        self.weights = Path(weights) if weights is not None else root / WEIGHTS
        if not self.weights.is_file():
            raise FileNotFoundError(
                f"the Palette weights are not installed ({self.weights}); train them with python -m studio.train "
                f"palette --data DATA.npz --run RUN --export {self.weights} (see docs/embedded-model.md)")
        super().__init__(root, device)
        self.classifier = None  # trained on the base's pictures, not asked for in image-to-image tasks
        # The colouriser always returns twice the network's size (finish_image puts the input's own detail back).
        scale = 2 if self.sr is not None or task == COLOURISE else 1
        base = int(self.config.get("base_size", 32))
        self.info = ModelInfo(NAMES[task], "palette", 3, scale, (base * scale, base * scale), 8,
                              recommended=RECOMMENDED[task], inpainting=True)

    def _load_base(self, root: Path) -> UNet:
        return _load_state(self.weights, UNet(network_config(self.weights)), self.device)

    def _network(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        if cond is None or "concat" not in cond:
            raise ValueError("the Palette network needs cond['concat'] (the runner adds it: inpaint_models.py)")
        return self.base(x, t, {k: v for k, v in cond.items() if k in NETWORK_KEYS})

    def inpainting_concat(self, mask: torch.Tensor, masked: torch.Tensor,
                          image: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The known image's channels at the network's size from the binary pixel ``mask`` [1, 1, H, W] and
        the whole init ``image`` [1, 3, H, W] in [-1, 1] (None without one)."""
        s = self.info.latent_scale
        if self.task == COLOURISE:
            if image is None:
                raise RequestError("init_image", "the emoji colouriser colours a picture: load or drop a grey "
                                                 "picture onto the canvas (on the command line, --init grey.png)")
            return {"concat": colourise_input(_shrink(image, s)).to(self.device)}
        if image is None:  # nothing known: all of it to paint, from the prompt alone
            h, w = mask.shape[-2:]
            return {"concat": inpaint_input(torch.zeros(1, 3, h // s, w // s), torch.ones(1, 1, h // s, w // s))
                    .to(self.device)}
        # A network pixel with any painted pixel in it is painted: a hole never shrinks into the known part,
        # and the runner pastes the known pixels back at full size (Runner._paste_known).
        hole = F.max_pool2d(mask, s) if s > 1 else mask
        return {"concat": inpaint_input(_shrink(image, s), hole).to(self.device)}

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        if self.task == COLOURISE:
            # No super-resolution: finish_image keeps only the colour of this picture and takes the detail
            # from the grey input, which holds the true 64 px detail the SR stage could only guess at.
            # Colour varies slowly, so a bilinear 2x is enough of it (JPEG keeps colour at half size too).
            return unit_to_image(F.interpolate(latent.clamp(-1, 1).float(), scale_factor=self.info.latent_scale,
                                               mode="bilinear", align_corners=False))
        return super().decode(latent, generator)

    def finish_image(self, image: np.ndarray, request: GenerationRequest) -> np.ndarray:
        """The colouriser's picture with the init image's own luminance: its colour, the input's detail."""
        if self.task != COLOURISE or request.init_image is None:
            return image
        grey = request.init_image[..., :3]
        if grey.shape[:2] != image.shape[:2]:
            from PIL import Image

            grey = np.asarray(Image.fromarray(grey).resize((image.shape[1], image.shape[0]),
                                                           Image.Resampling.LANCZOS))
        return keep_luminance(image, grey)


def keep_luminance(colour: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """``colour`` [H, W, 3] uint8 with the luminance of ``grey``: its chroma (each channel minus the luma) on the
    grey's luma, scaled down only where it would leave 0..255 (white has no colour at full strength), so the
    luma is the grey's and the hue the model's."""
    luma = np.asarray(LUMA, dtype=np.float32)
    c = colour.astype(np.float32)
    chroma = c - (c @ luma)[..., None]
    target = (grey.astype(np.float32) @ luma)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(chroma > 0, (255 - target) / chroma, np.where(chroma < 0, target / -chroma, np.inf))
    k = np.clip(room.min(axis=-1, keepdims=True), 0, 1)
    return np.clip(np.rint(target + k * chroma), 0, 255).astype(np.uint8)


def _shrink(image: torch.Tensor, scale: int) -> torch.Tensor:
    """The init image at the network's size, as encode_image makes the start latent (an average per block)."""
    return F.avg_pool2d(image.float(), scale) if scale > 1 else image.float()


def load_colouriser(device: str | torch.device = "cpu", root: Path | None = None) -> PaletteModel:
    return PaletteModel(COLOURISE, root, device)


def load_palette_inpainting(device: str | torch.device = "cpu", root: Path | None = None) -> PaletteModel:
    return PaletteModel(INPAINT, root, device)
