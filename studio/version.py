"""The studio's version: the installed package's, or the source tree's when it runs from a checkout or a bundle."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from . import __version__

DISTRIBUTION = "diffusion-studio"


def studio_version() -> str:
    """The version pip installed, else ``studio.__version__`` (the one pyproject.toml reads), saying where from."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        # A PyInstaller bundle carries the code without pip's metadata: it is no checkout.
        where = "bundle" if getattr(sys, "frozen", False) else "source checkout, not installed"
        return f"{__version__} ({where})"
