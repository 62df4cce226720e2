"""Image files with their generation parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

PARAMETERS_KEY = "parameters"


def save_image(path: str | Path, image: np.ndarray, parameters: str | None = None, quality: int = 95) -> Path:
    """Save uint8 [H, W, 3] as PNG, JPEG or WebP by extension; PNG carries ``parameters``."""
    path = Path(path)
    suffix = path.suffix.lower()
    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    if suffix == ".png":
        info = PngImagePlugin.PngInfo()
        if parameters:
            info.add_itxt(PARAMETERS_KEY, parameters)
        pil.save(path, pnginfo=info)
    elif suffix in (".jpg", ".jpeg", ".webp"):
        exif = _user_comment_exif(parameters) if parameters else None
        pil.save(path, quality=quality, **({"exif": exif} if exif else {}))
    else:
        raise ValueError(f"cannot save {path.name}: use a .png, .jpg or .webp file name")
    return path


def _user_comment_exif(text: str) -> bytes:
    # AUTOMATIC1111 keeps parameters of JPEG/WebP in EXIF UserComment (tag 0x9286), UNICODE-encoded.
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
    return exif.tobytes()


def read_parameters(path: str | Path) -> str | None:
    """The parameters text of an image file, or None when it has none."""
    with Image.open(path) as img:
        text = img.info.get(PARAMETERS_KEY)
        if text is None:
            comment = img.getexif().get_ifd(0x8769).get(0x9286)
            if isinstance(comment, bytes) and comment.startswith(b"UNICODE\0"):
                body = comment[8:]
                text = body.decode("utf-16-be" if body[:1] == b"\0" else "utf-16-le", errors="replace")
            elif isinstance(comment, bytes):
                text = comment.split(b"\0", 1)[-1].decode("utf-8", errors="replace")
            elif isinstance(comment, str):
                text = comment
    return text or None


def load_image(path: str | Path) -> np.ndarray:
    """Any image Pillow reads, as uint8 RGB [H, W, 3], alpha composited on white."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "P"):
                rgba = img.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(canvas, rgba)
            return np.asarray(img.convert("RGB"))
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image {Path(path).name}: {exc}") from exc
