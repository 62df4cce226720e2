"""A model built in code: coloured shapes, with an exact (analytic) denoiser.

The data distribution is a Gaussian mixture whose means are rendered images of
shapes in colours. For such data E[x0 | x] is known in closed form, so this
model needs no weights, runs in milliseconds, and makes clean images: it drives
tests, benchmarks and the UI when no trained model is at hand. The prompt picks
mixture weights by the shape and colour words it contains; classifier-free guidance
pushes away from what the negative prompt names. A noisy classifier over the shape, also exact, feeds classifier
guidance.
"""

from __future__ import annotations

import numpy as np
import torch

from ..denoisers import Cond
from ..prompt_syntax import plain_text
from ..schedules import make_schedule
from .base import ClassifierGrad, ModelInfo, Recommended, image_to_unit, unit_to_image

COLOURS = {
    "red": (220, 40, 40), "orange": (240, 140, 30), "yellow": (240, 210, 40), "green": (50, 170, 70),
    "blue": (40, 90, 220), "purple": (140, 60, 190), "white": (240, 240, 240), "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "ring", "stripes")
BACKGROUND = (70, 70, 80)
DATA_STD = 0.02  # per-pixel std of each mixture component, in [-1, 1] units


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r = min(h, w) * 0.35
    dist = np.hypot(yy - cy, xx - cx)
    if shape == "circle":
        return dist <= r
    if shape == "square":
        return (abs(yy - cy) <= r * 0.85) & (abs(xx - cx) <= r * 0.85)
    if shape == "triangle":
        top, bottom = cy - r, cy + r * 0.8
        half = (yy - top) / (bottom - top) * r
        return (yy >= top) & (yy <= bottom) & (abs(xx - cx) <= half)
    if shape == "ring":
        return (dist <= r) & (dist >= r * 0.6)
    if shape == "stripes":
        return ((xx // max(1, w // 8)) % 2 == 0) & (abs(yy - cy) <= r)
    raise ValueError(f"unknown shape {shape!r}")


def render(shape: str, colour: str, width: int, height: int) -> np.ndarray:
    """The mean image of one mixture component, uint8 [H, W, 3]."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND
    img[_shape_mask(shape, height, width)] = COLOURS[colour]
    return img


def _prompt_weights(prompt: str, components: list[tuple[str, str]]) -> torch.Tensor:
    """Log mixture weights: only components matching the shape and colour words the prompt names.

    The exclusion is hard (a weight of e^-10000): in thousands of pixel dimensions a soft
    prior is outvoted by the likelihood, and a guided run could land on another shape.
    """
    words = set(prompt.lower().replace(",", " ").split())
    shapes = words & set(SHAPES) | {s for s in SHAPES if s + "s" in words}
    colours = words & set(COLOURS)
    match = torch.tensor(
        [(not shapes or s in shapes) and (not colours or c in colours) for s, c in components])
    return torch.where(match, 0.0, -1e4).unsqueeze(0)


class ToyShapesModel:
    """Exact denoiser of a mixture of shape images; pixel space, any size that is a multiple of 8."""

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.info = ModelInfo("Toy shapes (built-in test model)", "toy", 3, 1, (32, 32), 8, has_classifier=True,
                              recommended=Recommended(steps=20, cfg_scale=5.0))
        self.schedule = make_schedule("cosine")
        self.device = torch.device(device)
        self.dtype = dtype
        self.components = [(s, c) for s in SHAPES for c in COLOURS]
        self._means: dict[tuple[int, int], torch.Tensor] = {}

    def means(self, height: int, width: int) -> torch.Tensor:
        """[K, D] component means at this size, cached."""
        key = (height, width)
        if key not in self._means:
            imgs = [image_to_unit(render(s, c, width, height)) for s, c in self.components]
            self._means[key] = torch.cat(imgs).flatten(1).to(self.device, self.dtype)
        return self._means[key]

    def _responsibilities(self, x: torch.Tensor, sigma: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
        mu = self.means(x.shape[-2], x.shape[-1])
        var = DATA_STD**2 + sigma.to(x.dtype) ** 2  # [B]
        d2 = torch.cdist(x.flatten(1), mu) ** 2  # [B, K]
        return torch.softmax(logw.to(x.dtype) - d2 / (2 * var[:, None]), dim=1)

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        mu = self.means(x.shape[-2], x.shape[-1])
        r = self._responsibilities(x, sigma, cond["logw"])
        shrink = (DATA_STD**2 / (DATA_STD**2 + sigma.to(x.dtype) ** 2))[:, None]  # [B, 1]
        mean_mu = r @ mu  # [B, D]
        x0 = mean_mu + shrink * (x.flatten(1) - mean_mu)
        return x0.view_as(x)

    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        # Emphasis syntax pasted from AUTOMATIC1111 is read as plain words here.
        logw = _prompt_weights(plain_text(prompt), self.components)
        # The unconditional branch is the negative prompt's distribution (all components when empty):
        # guidance then pushes away from what it names.
        neg = _prompt_weights(plain_text(negative_prompt), self.components)
        label = torch.tensor([self._shape_label(prompt)])
        return {"logw": logw.to(self.device), "label": label.to(self.device)}, {
            "logw": neg.to(self.device), "label": label.to(self.device)}

    @staticmethod
    def _shape_label(prompt: str) -> int:
        words = prompt.lower().split()
        for i, s in enumerate(SHAPES):
            if s in words or s + "s" in words:
                return i
        return 0

    def denoiser(self):
        return self._denoise

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        return image_to_unit(image).to(self.device, self.dtype)

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        return unit_to_image(latent)

    def preview(self, x0: torch.Tensor) -> np.ndarray:
        return unit_to_image(x0)

    def classifier_grad(self) -> ClassifierGrad | None:
        """Exact noisy classifier p(shape | x_sigma) = sum of the shape's responsibilities."""
        n_col = len(COLOURS)

        def grad(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
            x = x.detach().requires_grad_(True)
            uniform = torch.zeros(1, len(self.components), device=x.device)
            r = self._responsibilities(x, sigma, uniform).view(x.shape[0], len(SHAPES), n_col).sum(2)
            logp = r.clamp(min=1e-30).log().gather(1, cond["label"].view(-1, 1)).sum()
            return torch.autograd.grad(logp, x)[0]

        return grad
