"""Diffusion Studio: a desktop studio for diffusion image generation."""

__version__ = "0.1.0"
