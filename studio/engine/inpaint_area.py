"""AUTOMATIC1111's "Inpaint area: Only masked": inpaint a crop around the mask at the request's size.

The crop is the feathered mask's bounding box plus ``inpaint_padding`` pixels, widened to the
request's aspect ratio inside the picture (AUTOMATIC1111's ``expand_crop_region``); it is resized
to the request's width x height, so the model works at its own resolution whatever the photo's,
and a small edit in a 2048 px photo costs a 512 px run. The crop's result is resized back and
pasted into the photo with the feathered mask: outside it every pixel is the photo's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .inpaint import composite, feather_mask
from .limits import MAX_FEATHER
from .request import GenerationRequest, RequestError

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 (x2, y2 exclusive), in the photo's pixels


def mask_box(mask: np.ndarray, padding: int) -> Box | None:
    """The bounding box of the mask's non-zero pixels grown by ``padding`` (inside the picture); None if empty."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (max(int(cols[0]) - padding, 0), max(int(rows[0]) - padding, 0),
            min(int(cols[-1]) + 1 + padding, w), min(int(rows[-1]) + 1 + padding, h))


def _widen(lo: int, hi: int, want: int, size: int) -> tuple[int, int]:
    """Grow [lo, hi) to ``want`` pixels around its centre, shifted back inside [0, size), at most ``size``."""
    grow = max(want - (hi - lo), 0)
    lo, hi = lo - grow // 2, hi + grow - grow // 2
    if hi > size:
        lo, hi = lo - (hi - size), size
    if lo < 0:
        lo, hi = 0, hi - lo
    return lo, min(hi, size)


def expand_to_aspect(box: Box, width: int, height: int, image_w: int, image_h: int) -> Box:
    """Widen ``box`` along one side to the aspect ratio width:height, keeping it inside the picture."""
    x1, y1, x2, y2 = box
    if (x2 - x1) * height > (y2 - y1) * width:  # wider than the request: take more rows
        y1, y2 = _widen(y1, y2, int((x2 - x1) * height / width), image_h)
    else:
        x1, x2 = _widen(x1, x2, int((y2 - y1) * width / height), image_w)
    return x1, y1, x2, y2


def _resize(array: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Resize a uint8 RGB or float32 [H, W] array to ``size`` = (width, height)."""
    if array.shape[1::-1] == size:
        return array
    return np.asarray(Image.fromarray(array).resize(size, resample))


@dataclass(frozen=True, eq=False)
class MaskedArea:
    """A crop to inpaint at the request's size, and how to put its result back into the photo."""

    box: Box
    request: GenerationRequest  # the crop's request: init image and mask at width x height
    photo: np.ndarray  # uint8 [H, W, 3], the whole init image
    feathered: np.ndarray  # float [H, W], the photo's feathered mask: the paste's alpha

    def paste(self, image: np.ndarray) -> np.ndarray:
        """The photo with the crop's result ``image`` (width x height) resized back into the box."""
        x1, y1, x2, y2 = self.box
        out = self.photo.copy()
        # The feathered mask is 0 outside the box: only the box is blended (a 2048 px photo stays cheap).
        out[y1:y2, x1:x2] = composite(_resize(image, (x2 - x1, y2 - y1), Image.Resampling.LANCZOS),
                                      self.photo[y1:y2, x1:x2], self.feathered[y1:y2, x1:x2])
        return out


def feather_around(mask: np.ndarray, radius: float) -> np.ndarray:
    """``feather_mask(mask, radius)``, computed only in a window around the mask's pixels (the rest is 0).

    The window is the mask's bounding box grown by the blur's reach plus one pixel, so the blur's edge
    padding inside it reads the zeros the whole picture has there: the values equal the whole-picture
    blur's, at the cost of the window alone.
    """
    out = np.zeros(mask.shape, np.float32)
    reach = int(np.ceil(3 * radius / 2)) + 1 if radius > 0 else 0  # feather_mask's kernel half-width, plus one
    box = mask_box(mask > 0, reach)
    if box is not None:
        x1, y1, x2, y2 = box
        out[y1:y2, x1:x2] = feather_mask(mask[y1:y2, x1:x2], radius)
    return out


def masked_area(request: GenerationRequest) -> MaskedArea | None:
    """The crop for an "only masked" request; None when the whole picture is inpainted (or nothing is)."""
    if request.inpaint_area != "masked" or request.mask is None or request.init_image is None:
        return None
    photo = np.ascontiguousarray(request.init_image[..., :3])
    feathered = feather_around(request.mask, request.mask_feather)
    box = mask_box(feathered > 0, request.inpaint_padding)
    if box is None:
        raise RequestError("mask", "is empty: paint the area to inpaint, or set Inpaint area to Whole picture")
    h, w = photo.shape[:2]
    x1, y1, x2, y2 = box = expand_to_aspect(box, request.width, request.height, w, h)
    size = (request.width, request.height)
    mask = np.clip(request.mask[y1:y2, x1:x2], 0, 1).astype(np.float32)
    crop = request.with_changes(
        init_image=_resize(photo[y1:y2, x1:x2], size, Image.Resampling.LANCZOS),
        mask=np.clip(_resize(mask, size, Image.Resampling.BILINEAR), 0, 1),
        # The feather in the crop's pixels: the crop is scaled by width / (x2 - x1).
        mask_feather=min(request.mask_feather * request.width / (x2 - x1), MAX_FEATHER),
        inpaint_area="whole")
    return MaskedArea(box, crop, photo, feathered)
