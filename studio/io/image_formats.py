"""The image files the studio opens: one list for the open dialog, drag and drop, and the command line.

Every suffix here is a format the bundled Pillow reads (tested in tests/test_image_files.py).
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
OPEN_FILTER = f"Images ({' '.join('*' + s for s in IMAGE_SUFFIXES)});;All files (*)"


def is_image_path(path: str | Path) -> bool:
    """Whether a file name has one of the suffixes the studio opens (the content is checked on loading)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def suffix_list() -> str:
    return ", ".join(IMAGE_SUFFIXES)
