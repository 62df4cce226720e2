"""Where the files the studio ships live: configs, tokenizers, the embedded model, the theme.

They sit in ``studio/resources`` inside the package and are found through ``importlib.resources``, so a source
checkout, an installed wheel and a PyInstaller bundle find them alike (never a path relative to a checkout).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_dir(*parts: str) -> Path:
    """``studio/resources/<parts...>`` as a file-system path (wheels and bundles install the package unzipped)."""
    return Path(str(files("studio").joinpath("resources", *parts)))
