"""ControlNet preprocessors that need no downloaded weights: an image in, the control map a ControlNet reads.

Torch-free (numpy and Pillow), so the window can show a unit's control map too. Every map is
float32 [H, W, 3] in [0, 1], white features on black, as ControlNets are trained.

- ``none``: the image as it is (a depth map or pose made elsewhere, or strokes already white on black).
- ``canny``: Canny edges (Canny 1986) with sd-webui-controlnet's thresholds 100 / 200. They are on
  OpenCV's scale (3x3 Sobel, |gx| + |gy|), and like OpenCV's Canny, which that extension calls, the
  image is not blurred first unless ``blur_sigma`` says so.
- ``scribble``: a user's scribble becomes white strokes on black. A light picture (median above mid-grey:
  dark strokes on paper) is inverted first; then every pixel brighter than mid-grey is a stroke. This is
  sd-webui-controlnet's "invert" followed by its "threshold" at 127, done in one step so either kind of
  drawing works.
- ``scribble_xdog``: strokes found in a photo or drawing by a difference of Gaussians (sigmas 0.5 and 5,
  threshold 32), as sd-webui-controlnet's scribble_xdog.
- ``invert`` / ``lineart_strokes``: black lines on white become white lines on black (its "invert").

Depth and pose maps need a network's weights (MiDaS, OpenPose) that the studio does not ship;
asking for them names the file that would be needed.
"""

from __future__ import annotations

import numpy as np

from .request import RequestError

PREPROCESSORS = ("none", "canny", "scribble", "scribble_xdog", "invert", "lineart_strokes")
# Preprocessors that need weights the studio does not have, and the files sd-webui-controlnet loads for them.
NEEDS_WEIGHTS = {
    "depth": "dpt_hybrid-midas-501f0c75.pt (MiDaS)",
    "depth_midas": "dpt_hybrid-midas-501f0c75.pt (MiDaS)",
    "depth_zoe": "ZoeD_M12_N.pt (ZoeDepth)",
    "depth_leres": "res101.pth (LeReS)",
    "openpose": "body_pose_model.pth (OpenPose body)",
    "openpose_full": "body_pose_model.pth, hand_pose_model.pth and facenet.pth (OpenPose)",
    "openpose_hand": "body_pose_model.pth and hand_pose_model.pth (OpenPose)",
    "openpose_face": "body_pose_model.pth and facenet.pth (OpenPose)",
    "pose": "body_pose_model.pth (OpenPose body)",
}
CANNY_LOW, CANNY_HIGH = 100, 200  # sd-webui-controlnet's defaults
XDOG_THRESHOLD = 32


def control_map(image: np.ndarray, preprocessor: str, width: int, height: int, *,
                canny_low: float = CANNY_LOW, canny_high: float = CANNY_HIGH) -> np.ndarray:
    """The control map for ``image`` (uint8 [H, W, 3 or 4]) at ``width`` x ``height``.

    The image is first stretched to the run's size (sd-webui-controlnet's "Just Resize"; a control
    layer drawn on the canvas already has it), then preprocessed there, so thin edges stay one pixel.
    """
    name = (preprocessor or "none").strip().lower()
    if name in NEEDS_WEIGHTS:
        raise RequestError("controlnets", f"the {name} preprocessor needs {NEEDS_WEIGHTS[name]}, which the studio "
                                          "does not have; make the map elsewhere and use the preprocessor none")
    if name not in PREPROCESSORS:
        raise RequestError("controlnets", f"unknown preprocessor {preprocessor!r}; choose one of "
                                          f"{', '.join(PREPROCESSORS)}")
    rgb = _resized(_rgb(image, light=name in ("scribble", "invert", "lineart_strokes")), width, height)
    if name == "none":
        out = rgb
    elif name == "canny":
        out = np.repeat(canny(rgb, canny_low, canny_high)[..., None], 3, axis=2)
    elif name == "scribble":
        out = scribble(rgb)
    elif name == "scribble_xdog":
        out = scribble_xdog(rgb)
    else:
        out = 255 - rgb
    return out.astype(np.float32) / 255.0


def _rgb(image: np.ndarray, light: bool) -> np.ndarray:
    """uint8 RGB; transparent pixels become the background the preprocessor expects (paper or black)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255.0
        back = 255.0 if light else 0.0
        return np.round(image[..., :3] * alpha + back * (1 - alpha)).astype(np.uint8)
    return image[..., :3].astype(np.uint8)


def _resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if rgb.shape[:2] == (height, width):
        return rgb
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float [H, W] or [H, W, C] array (edges mirrored); radius 3 sigma."""
    if sigma <= 0:
        return image.astype(np.float32)
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        acc = np.zeros_like(out)
        for i, k in enumerate(kernel):
            acc += k * np.take(padded, np.arange(i, i + out.shape[axis]), axis=axis)
        out = acc
    return out.astype(np.float32)


def _sobel(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 Sobel derivatives (unnormalised, as OpenCV's), borders replicated."""
    p = np.pad(channel.astype(np.float32), 1, mode="edge")
    smooth_y = p[:-2] + 2 * p[1:-1] + p[2:]  # [H, W + 2]
    gx = smooth_y[:, 2:] - smooth_y[:, :-2]
    smooth_x = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # [H + 2, W]
    gy = smooth_x[2:] - smooth_x[:-2]
    return gx, gy


def canny(rgb: np.ndarray, low: float = CANNY_LOW, high: float = CANNY_HIGH, blur_sigma: float = 0.0) -> np.ndarray:
    """Canny edges of a uint8 [H, W, 3] image: uint8 [H, W], 255 on edges.

    Per pixel the colour channel with the strongest gradient counts (as OpenCV does for colour
    images); magnitudes are |gx| + |gy|; non-maximum suppression along the gradient's direction
    (four sectors); pixels above ``high`` are edges, and pixels above ``low`` joined to them through
    8-neighbours too (hysteresis).
    """
    if low > high:
        low, high = high, low
    image = gaussian_blur(rgb, blur_sigma) if blur_sigma > 0 else rgb.astype(np.float32)
    if image.ndim == 2:
        image = image[..., None]
    gx = np.zeros(image.shape[:2], np.float32)
    gy = np.zeros_like(gx)
    mag = np.full_like(gx, -1.0)
    for c in range(image.shape[2]):
        cx, cy = _sobel(image[..., c])
        m = np.abs(cx) + np.abs(cy)
        stronger = m > mag
        gx[stronger], gy[stronger], mag[stronger] = cx[stronger], cy[stronger], m[stronger]
    peaks = _non_maximum(mag, gx, gy)
    return _hysteresis(peaks & (mag > low), peaks & (mag > high))


def _non_maximum(mag: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Where ``mag`` is a maximum along the gradient: above one neighbour, at least the other."""
    h, w = mag.shape
    p = np.pad(mag, 1, mode="constant", constant_values=0)

    def at(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    angle = np.degrees(np.arctan2(gy, gx)) % 180.0
    sector = (np.floor((angle + 22.5) / 45.0).astype(np.int64)) % 4  # 0: x, 1: diagonal down-right, 2: y, 3: other
    out = np.zeros((h, w), bool)
    for s, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        here = sector == s
        keep = (mag > at(-dy, -dx)) & (mag >= at(dy, dx))
        out |= here & keep
    return out & (mag > 0)


def _hysteresis(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Strong pixels and every weak pixel 8-connected to one, grown frontier by frontier (numpy, no scipy)."""
    h, w = weak.shape
    cand = np.zeros((h + 2, w + 2), bool)  # a false border, so neighbour offsets never wrap a row
    cand[1:-1, 1:-1] = weak | strong
    done = np.zeros_like(cand)
    width = w + 2
    offsets = np.array([dy * width + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    frontier = np.flatnonzero(np.pad(strong, 1))
    flat_cand, flat_done = cand.ravel(), done.ravel()
    flat_done[frontier] = True
    while frontier.size:
        near = np.unique((frontier[:, None] + offsets[None, :]).ravel())
        near = near[flat_cand[near] & ~flat_done[near]]
        flat_done[near] = True
        frontier = near
    return (done[1:-1, 1:-1] * np.uint8(255)).astype(np.uint8)


def scribble(rgb: np.ndarray) -> np.ndarray:
    """White strokes on black from a scribble in either colour scheme (see the module docstring)."""
    gray = rgb.astype(np.float32).mean(axis=2)
    if np.median(gray) > 127:
        gray = 255 - gray  # dark strokes on paper
    return np.repeat(np.where(gray > 127, 255, 0).astype(np.uint8)[..., None], 3, axis=2)


def scribble_xdog(rgb: np.ndarray, threshold: float = XDOG_THRESHOLD) -> np.ndarray:
    """Strokes where a fine blur is darker than a coarse one by more than ``threshold`` / 2 (a difference of
    Gaussians, as sd-webui-controlnet's scribble_xdog)."""
    image = rgb.astype(np.float32)
    fine, coarse = gaussian_blur(image, 0.5), gaussian_blur(image, 5.0)
    darker = np.clip(np.ceil(np.min(coarse - fine, axis=2)), 0, 255)  # how much darker than its surroundings
    edges = np.where(2 * darker > threshold, 255, 0).astype(np.uint8)
    return np.repeat(edges[..., None], 3, axis=2)
