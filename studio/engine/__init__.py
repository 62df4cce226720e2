"""The diffusion engine: pure torch, never Qt."""
