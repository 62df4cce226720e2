"""Qt user interface of Diffusion Studio (PySide6; never imports torch)."""
