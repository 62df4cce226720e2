"""Image files with their generation parameters."""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .image_formats import suffix_list

PARAMETERS_KEY = "parameters"


def save_image(path: str | Path, image: np.ndarray, parameters: str | None = None, quality: int = 95,
               extra_text: dict[str, str] | None = None) -> Path:
    """Save uint8 [H, W, 3] as PNG, JPEG or WebP by extension; PNG carries ``parameters`` (and ``extra_text``
    chunks, such as A1111's ``postprocessing``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    if suffix == ".png":
        info = PngImagePlugin.PngInfo()
        if parameters:
            info.add_itxt(PARAMETERS_KEY, parameters)
        for key, text in (extra_text or {}).items():
            info.add_itxt(key, text)
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
    """The parameters text of an image file, or None when it has none (ValueError when it cannot be read)."""
    try:
        with warnings.catch_warnings():
            # Only the text is read, never the pixels: a large image is no decompression bomb here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                text = img.info.get(PARAMETERS_KEY)
                raw_exif = img.info.get("exif")
        if text is None and raw_exif:
            # From the raw EXIF bytes (JPEG, WebP, a PNG eXIf chunk): img.getexif() on a PNG decodes the
            # whole image to look for an eXIf chunk after the pixels.
            exif = Image.Exif()
            exif.load(raw_exif)
            comment = exif.get_ifd(0x8769).get(0x9286)
            if isinstance(comment, bytes) and comment.startswith(b"UNICODE\0"):
                body = comment[8:]
                text = body.decode("utf-16-be" if body[:1] == b"\0" else "utf-16-le", errors="replace")
            elif isinstance(comment, bytes):
                text = comment.split(b"\0", 1)[-1].decode("utf-8", errors="replace")
            elif isinstance(comment, str):
                text = comment
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types (OSError, SyntaxError,
        # struct.error, EOFError, DecompressionBombError, ...) on a damaged or hostile file: all mean "unreadable".
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot read parameters from {Path(path).name}: {reason}") from exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text if isinstance(text, str) and text else None


def load_image(path: str | Path) -> np.ndarray:
    """Any image Pillow reads, as uint8 RGB [H, W, 3], alpha composited on white; ImageFileError (a
    ValueError) naming the file and the problem when it is missing, a folder, not an image, damaged,
    or too large to open (checked from the header, before any pixel is decoded)."""
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f"{path.name} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its two bomb limits; a warning here is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(path.name, *img.size)
                img.load()
                return _to_rgb(img)
    except ImageFileError:
        raise
    except FileNotFoundError:
        raise ImageFileError(f"{path.name} does not exist ({path})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageFileError(f"{path.name} has {count}; the studio opens images up to {MAX_IMAGE_PIXELS:,} "
                             "pixels") from None
    except UnidentifiedImageError:
        raise ImageFileError(f"{path.name} is not an image the studio can read (it opens {suffix_list()})") from None
    except PermissionError:
        raise ImageFileError(f"{path.name} cannot be read: permission denied") from None
    except DECODE_ERRORS as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ImageFileError(f"{path.name} is damaged or truncated ({reason})") from None


class ImageFileError(ValueError):
    """An image file that cannot be opened; the message names it and says why."""


# A 8192 x 8192 picture: twice the largest side any model accepts (engine/limits.py), so a photo can still
# be opened and cropped, and under Pillow's own bomb warning (~89 M pixels).
MAX_IMAGE_PIXELS = 8192 * 8192
# What Pillow's decoders raise on damaged data, besides OSError ("image file is truncated").
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, ZeroDivisionError, struct.error,
                 MemoryError)


def _check_pixels(name: str, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageFileError(f"{name} is {width}x{height}, {width * height:,} pixels; the studio opens images up "
                             f"to {MAX_IMAGE_PIXELS:,} pixels")
    if width < 1 or height < 1:
        raise ImageFileError(f"{name} has no pixels ({width}x{height})")


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Every Pillow mode as uint8 RGB: 16-bit and float greys scaled (not clipped), alpha on white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(img, dtype=np.float64)
        top = 65535.0 if grey.max(initial=0) > 255 or img.mode != "I" else 255.0
        return _grey_to_rgb(np.clip(grey / top * 255.0, 0, 255))
    if img.mode == "F":
        grey = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = 1.0 if grey.max(initial=0) <= 1.0 else 255.0  # float images are 0..1 or 0..255
        return _grey_to_rgb(np.clip(grey / top * 255.0, 0, 255))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    return np.asarray(img.convert("RGB"))


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(np.round(grey).astype(np.uint8)[..., None], 3, axis=2)
