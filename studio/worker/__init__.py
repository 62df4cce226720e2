"""The engine thread: the one place in the studio that owns torch, the model and the device.

Importing this package does not import torch; the engine loads inside the thread.
"""

from .engine_client import EngineClient

__all__ = ["EngineClient"]
