"""The GPU memory settings a user can choose for a model's parts, by name.

Torch-free on purpose: the settings file, the Settings dialog and the command line read the names; what each
does is models/flow/offload.py.
"""

from __future__ import annotations

# auto: the fastest that fits the GPU's free memory at load; none: everything on the GPU; model: one part
# (text encoders, transformer, VAE) at a time; sequential: the transformer's blocks streamed one by one.
OFFLOAD_MODES = ("auto", "none", "model", "sequential")
