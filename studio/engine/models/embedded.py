"""The embedded emoji model: trained by us, shipped in studio/resources/embedded/, runs offline on a CPU.

A text-conditioned 32 px pixel-space UNet (v-prediction, cosine schedule) whose
prompt embedding comes from all-MiniLM-L6-v2; optionally a 32 -> 64 px
super-resolution UNet run inside ``decode`` (cascaded diffusion), and a noisy
category classifier for classifier guidance. See studio/resources/embedded/MODEL_CARD.md.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ...resource_files import resource_dir
from ..denoisers import Cond, DiscreteTimeDenoiser
from ..prompt_syntax import plain_text
from ..schedules import make_schedule, sampling_sigmas
from .base import ClassifierGrad, ModelInfo, Recommended, image_to_unit, unit_to_image
from .classifier import Classifier, ClassifierConfig
from .unet import UNet, UNetConfig

RESOURCE_DIR = resource_dir("embedded")
REQUIRED_FILES = ("config.json", "base.safetensors", "emoji_index.safetensors")
NAME = "Diffusion Studio emoji (embedded)"


def embedded_weights_present(root: Path = RESOURCE_DIR) -> bool:
    return all((root / f).is_file() for f in REQUIRED_FILES)


def _load_state(path: Path, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    # Weights ship in fp16 to halve the download; compute in fp32 (bf16/fp16 convs are slow on most CPUs).
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    module.load_state_dict(state)
    # channels-last: mkldnn convolutions ran about 25% faster on these CPUs (same numbers to 1e-6)
    return module.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)


class EmbeddedModel:
    """The DiffusionModel protocol over the shipped emoji networks."""

    required_files = REQUIRED_FILES

    def __init__(self, root: Path = RESOURCE_DIR, device: str | torch.device = "cpu"):
        for f in self.required_files:
            if not (root / f).is_file():
                raise FileNotFoundError(f"embedded model file missing: {root / f}")
        self.root = root
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.config = json.loads((root / "config.json").read_text())
        self.schedule = make_schedule(self.config["schedule"])
        self.prediction = self.config["prediction"]
        self.categories: list[str] = list(self.config["categories"])
        self.base = self._load_base(root)
        self.sr = None
        if "sr" in self.config and (root / "sr.safetensors").is_file():
            self.sr = _load_state(root / "sr.safetensors",
                                  UNet(UNetConfig.from_dict(self.config["sr"]["config"])), self.device)
        self.classifier = None
        if "classifier" in self.config and (root / "classifier.safetensors").is_file():
            self.classifier = _load_state(
                root / "classifier.safetensors",
                Classifier(ClassifierConfig.from_dict(self.config["classifier"]["config"])), self.device)
        index = load_file(str(root / "emoji_index.safetensors"))
        self.emoji_embedding = index["embedding"].float().to(self.device)
        self.emoji_category = index["category"].to(self.device)
        names_path = root / "emoji_names.json"
        self.emoji_names: list[str] = json.loads(names_path.read_text()) if names_path.is_file() else []
        scale = 2 if self.sr is not None else 1
        base = int(self.config.get("base_size", 32))
        advice = dict(self.config.get("recommended", {}))
        if self.classifier is None:
            advice.pop("classifier_scale", None)
        self.info = ModelInfo(NAME, "embedded", 3, scale, (base * scale, base * scale), 8,
                              has_classifier=self.classifier is not None, recommended=Recommended(**advice))

    def _load_base(self, root: Path) -> UNet:
        """The 32 px network the sampler runs (models/palette.py loads its image-to-image one instead)."""
        return _load_state(root / "base.safetensors", UNet(UNetConfig.from_dict(self.config["base"]["config"])),
                           self.device)

    # --- text ---------------------------------------------------------------------------------------
    def embed_text(self, text: str) -> torch.Tensor:
        """[1, 384] prompt embedding; an empty prompt is the zero vector the network saw on dropout."""
        return _embed_cached(text.strip())[0].clone().to(self.device)

    def text_cond(self, text: str) -> dict[str, torch.Tensor]:
        """What the base UNet reads of a prompt: the pooled vector, and its token states when it attends."""
        pooled, tokens, mask = (v.clone().to(self.device) for v in _embed_cached(text.strip()))
        if not self.base.config.token_dim:
            return {"text": pooled}
        return {"text": pooled, "tokens": tokens, "token_mask": mask}

    def _nearest_index(self, text: str) -> int:
        """Row of emoji_index closest to a prompt (cosine: both sides are unit vectors)."""
        return int((self.emoji_embedding @ self.embed_text(text)[0]).argmax())

    def nearest_emoji(self, text: str) -> tuple[str, str]:
        """(emoji name, category) closest to a prompt: what the classifier guidance aims at."""
        i = self._nearest_index(text)
        name = self.emoji_names[i] if i < len(self.emoji_names) else str(i)
        return name, self.categories[int(self.emoji_category[i])]

    def describe_prompt(self, prompt: str) -> str:
        """A one-line hint for the prompt box: the emoji this prompt is closest to, which the
        pictures and the classifier guidance lean towards (the model knows only emoji)."""
        text = plain_text(prompt)
        if not text:
            return ""
        name, category = self.nearest_emoji(text)
        return f"Closest emoji the model knows: {name} ({category})"

    def prompt_label(self, text: str) -> int:
        if not text.strip():
            return 0
        return int(self.emoji_category[self._nearest_index(text)])

    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        # A sentence encoder has no token weights: emphasis syntax from AUTOMATIC1111 is read as plain words.
        prompt, negative_prompt = plain_text(prompt), plain_text(negative_prompt)
        label = torch.tensor([self.prompt_label(prompt)], device=self.device)
        cond = {**self.text_cond(prompt), "label": label}
        # Same keys and shapes for the unconditional branch, as the engine batches them together.
        uncond = {**self.text_cond(negative_prompt), "label": label.clone()}
        return cond, uncond

    # --- diffusion ----------------------------------------------------------------------------------
    def _network(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        if cond is None:
            return self.base(x, t, None)
        return self.base(x, t, {k: v for k, v in cond.items() if k in ("text", "tokens", "token_mask")})

    def denoiser(self) -> DiscreteTimeDenoiser:
        return DiscreteTimeDenoiser(self._network, self.schedule, self.prediction)

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        if image.ndim != 3 or image.shape[2] < 3:
            raise ValueError(f"expected a uint8 [H, W, 3] image, got shape {tuple(image.shape)}")
        x = image_to_unit(image).to(self.device)
        s = self.info.latent_scale
        return F.avg_pool2d(x, s) if s > 1 else x

    def preview(self, x0: torch.Tensor) -> np.ndarray:
        return unit_to_image(x0)

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        if self.sr is None:
            return unit_to_image(latent)
        return unit_to_image(self.upscale(latent.clamp(-1, 1), generator))

    @torch.no_grad()
    def upscale(self, low: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Super-resolve [B, 3, h, w] in [-1, 1] to [B, 3, 2h, 2w] with the SR UNet (Ho et al. 2021)."""
        from ..samplers import sample_dpmpp_2m

        if self.sr is None:
            raise ValueError("this embedded model ships no super-resolution stage")
        g = generator if generator is not None else torch.Generator("cpu").manual_seed(0)
        sr_cfg = self.config["sr"]
        level = int(sr_cfg.get("noise_level", 100))
        b, c, h, w = low.shape
        up = F.interpolate(low.float(), size=(2 * h, 2 * w), mode="bilinear", align_corners=False)
        ab = float(self.schedule.alphas_cumprod[level])
        noise = torch.randn(up.shape, generator=g, device=g.device).to(up.device)
        cond = {"lowres": ab**0.5 * up + (1 - ab) ** 0.5 * noise,
                "noise_level": torch.full((b,), float(level), device=up.device)}
        denoise = DiscreteTimeDenoiser(self.sr, self.schedule, self.prediction)
        sigmas = sampling_sigmas(self.schedule, int(sr_cfg.get("steps", 10)), "karras").to(up.device)
        x = torch.randn(up.shape, generator=g, device=g.device).to(up.device) * sigmas[0]
        return sample_dpmpp_2m(denoise, x, sigmas, cond=cond, generator=g)

    # --- classifier guidance ------------------------------------------------------------------------
    def classifier_grad(self) -> ClassifierGrad | None:
        if self.classifier is None:
            return None
        clf, schedule = self.classifier, self.schedule

        def grad(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
            if cond is None or "label" not in cond:
                raise ValueError("classifier guidance needs cond['label'] (from encode_prompt)")
            x = x.detach().float().requires_grad_(True)
            s = sigma.to(x.device, torch.float32).reshape(-1, 1, 1, 1)
            t = schedule.sigma_to_t(sigma).to(x.device)
            logp = torch.log_softmax(clf(x / (1 + s**2).sqrt(), t), dim=-1)
            label = cond["label"].to(x.device).expand(x.shape[0])
            picked = logp.gather(1, label[:, None]).sum()
            return torch.autograd.grad(picked, x)[0]

        return grad


@lru_cache(maxsize=256)
def _embed_cached(text: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pooled [1, 384], tokens [1, L, 384], mask [1, L]); the empty prompt is all zeros (dropout's input)."""
    from .text_encoder import EMBED_DIM, MAX_TOKENS, shared_text_encoder

    if not text:
        return torch.zeros(1, EMBED_DIM), torch.zeros(1, MAX_TOKENS, EMBED_DIM), torch.zeros(1, MAX_TOKENS)
    return shared_text_encoder("cpu").encode_with_tokens([text])


def load_embedded_model(device: str | torch.device = "cpu", root: Path | None = None) -> EmbeddedModel:
    """Load the shipped embedded model; FileNotFoundError names the first missing file."""
    return EmbeddedModel(RESOURCE_DIR if root is None else Path(root), device)
