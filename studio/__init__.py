"""Diffusion Studio: a desktop studio for diffusion image generation."""

import os

__version__ = "0.1.0"  # pyproject.toml reads it; studio/version.py says which one runs

# Here, because every way in (main.py, the console scripts, python -m studio, a bundle) imports this package
# before torch: with OpenMP's default wait policy torch slowed 3-40x whenever another process used the CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
