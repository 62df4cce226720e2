"""The studio's version: the installed package's, or the source tree's when it runs from a checkout."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import __version__

DISTRIBUTION = "diffusion-studio"


def studio_version() -> str:
    """The version pip installed, else ``studio.__version__`` (the one pyproject.toml reads) marked as a checkout."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return f"{__version__} (source checkout, not installed)"
