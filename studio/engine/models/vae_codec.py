"""Pixels <-> latents through a diffusers AutoencoderKL, shared by every latent family (SD, SD3, Flux, ...).

The codec owns what every family does the same way: the scaling factor and shift of the latent space,
the posterior mean for encoding (reproducible, as diffusers' img2img pipelines do with a fixed generator),
fp16 VAEs that overflow upcast to fp32 for good, tiled encoding and decoding of large images (vae_tiles.py),
and out-of-memory errors turned into advice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..devices import empty_cache, is_out_of_memory
from .base import image_to_unit, unit_to_image
from .vae_tiles import tiled_decode, tiled_encode

TILE_ABOVE_PIXELS = 1536 * 1536  # encode and decode larger images in tiles to bound VAE memory
AUTO_TILE_PIXELS = 512  # the tile side (image pixels) used above that size when no tile size is chosen


class DeviceOutOfMemoryError(RuntimeError):
    """The device ran out of memory; the message says what to try."""


class VaeCodec:
    """Encode and decode with one AutoencoderKL at a latent scaling factor and shift."""

    def __init__(self, vae: torch.nn.Module, device: torch.device, weights_dtype: torch.dtype,
                 scaling_factor: float | None = None, shift_factor: float | None = None):
        self.vae = vae
        self.device = device
        self.dtype = weights_dtype
        if getattr(vae.config, "force_upcast", False) and weights_dtype == torch.float16:
            # The SDXL VAE overflows in fp16 (its config says so): decode in fp32 from the start.
            vae.to(torch.float32)
            self.dtype = torch.float32
        self.scaling_factor = float(scaling_factor if scaling_factor is not None else vae.config.scaling_factor)
        config_shift = getattr(vae.config, "shift_factor", None)
        self.shift_factor = float(shift_factor if shift_factor is not None else config_shift or 0.0)
        self.latent_channels = int(vae.config.latent_channels)
        self.latent_scale = 2 ** (len(vae.config.block_out_channels) - 1)  # image pixels per latent pixel
        # Tile side in image pixels for encoding and decoding (0: whole images up to TILE_ABOVE_PIXELS, tiles of
        # AUTO_TILE_PIXELS above). The runner sets it from the request before each run.
        self.tile_size = 0

    @torch.no_grad()
    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] -> float32 latent [1, C, h, w] on the device."""
        return self.encode_unit(image_to_unit(image))

    @torch.no_grad()
    def encode_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """A float [1, 3, H, W] image in [-1, 1] -> latent (the inpainting conditioning's masked image is 0 there,
        a grey no uint8 image holds)."""
        unit = unit.to(self.device, torch.float32)
        tile = self._tile_latents(unit.shape[-2] * unit.shape[-1])
        if unit.shape[-2] % self.latent_scale or unit.shape[-1] % self.latent_scale:
            tile = 0  # tiles are cut on latent cells

        def encode(pixels: torch.Tensor) -> torch.Tensor:
            return self.vae.encode(pixels.to(self.dtype)).latent_dist.mean

        def run() -> torch.Tensor:
            if tile:
                return tiled_encode(encode, self.vae.encoder, unit, tile, self.latent_scale)
            return encode(unit)

        with readable_oom("encoding the init image"):
            z = self._with_fp32_retry(run)
        return (z.float() - self.shift_factor) * self.scaling_factor

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Latent [1, C, h, w] -> uint8 [H, W, 3]; large images decode in tiles, and in tiles again on OOM."""
        z = latent.to(self.device, torch.float32) / self.scaling_factor + self.shift_factor
        pixels = z.shape[-1] * z.shape[-2] * self.latent_scale**2

        def decode(latent: torch.Tensor) -> torch.Tensor:
            return self.vae.decode(latent.to(self.dtype), return_dict=False)[0]

        def run(tile: int) -> torch.Tensor:
            if tile:
                return tiled_decode(decode, self.vae.decoder, z, tile, self.latent_scale)
            return decode(z)

        try:
            image = self._with_fp32_retry(lambda: run(self._tile_latents(pixels)))
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            if pixels <= TILE_ABOVE_PIXELS // 4:  # small images: tiling would not help
                raise oom_error("decoding the image", exc) from exc
            empty_cache(self.device)
            with readable_oom("decoding the image (even in tiles)"):
                image = self._with_fp32_retry(lambda: run(self._tile_latents(pixels, force=True)))
        return unit_to_image(image.float())

    def _tile_latents(self, pixels: int, force: bool = False) -> int:
        """The tile side in latent cells for an image of ``pixels`` pixels (0: untiled)."""
        side = self.tile_size or (AUTO_TILE_PIXELS if force or pixels > TILE_ABOVE_PIXELS else 0)
        if force and self.tile_size:
            side = min(side, AUTO_TILE_PIXELS)  # out of memory at the chosen size: try the default
        return max(1, side // self.latent_scale) if side else 0

    def _with_fp32_retry(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run a VAE call; NaNs in fp16 (the SDXL VAE overflows) -> upcast the VAE to fp32 for good and retry."""
        out = fn()
        if not torch.isfinite(out).all() and self.dtype != torch.float32:
            self.vae.to(torch.float32)
            self.dtype = torch.float32
            out = fn()
        return out


class CodecMethods:
    """The DiffusionModel protocol's pixel <-> latent methods for a model with a ``codec`` (SD, flow families):
    latents come back in the sampler's ``dtype``."""

    codec: VaeCodec
    dtype: torch.dtype

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        return self.codec.encode_image(image).to(self.dtype)

    def encode_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """A float [1, 3, H, W] image in [-1, 1] -> latent (see VaeCodec.encode_unit)."""
        return self.codec.encode_unit(unit).to(self.dtype)

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        return self.codec.decode(latent)


class readable_oom:
    """Turn a device out-of-memory error into DeviceOutOfMemoryError with advice."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, RuntimeError) and not isinstance(exc, DeviceOutOfMemoryError) \
                and is_out_of_memory(exc):
            raise oom_error(self.what, exc) from exc
        return False


def oom_error(what: str, exc: BaseException) -> DeviceOutOfMemoryError:
    return DeviceOutOfMemoryError(
        f"out of memory while {what}; try a smaller image size, fp16 weights, or close other programs "
        f"using the GPU ({str(exc).splitlines()[0][:160]})")
