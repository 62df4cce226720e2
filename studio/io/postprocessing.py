"""AUTOMATIC1111's Extras text: what an upscale of a finished image adds to its file.

A1111 keeps the image's generation ``parameters`` as they were and writes what the Extras tab did
into a PNG text chunk of its own, ``postprocessing``: ``Postprocess upscale by: 4, Postprocess
upscaler: R-ESRGAN 4x+`` (the factor first, as its upscale step records it before the upscaler).
"""

from __future__ import annotations

import re

POSTPROCESSING_KEY = "postprocessing"


def upscale_text(upscaler: str, scale: float) -> str:
    """``Postprocess upscale by: 4, Postprocess upscaler: NAME`` (a name with a comma or colon quoted, as A1111
    quotes such values)."""
    return f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {_quoted(upscaler)}"


def _quoted(value: str) -> str:
    if re.search(r"[,:\n\"]", value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return value


def with_upscale(parameters: str, text: str) -> str:
    """A history entry's parameters with the upscale added: appended to the settings line (other tools and the
    studio keep keys they do not know), so the settings still read back; on a line of its own when there is none."""
    if not parameters.strip():
        return text
    last = parameters.rstrip().splitlines()[-1]
    if re.match(r"^\s*Steps: ", last) or ", Seed: " in last:
        return f"{parameters.rstrip()}, {text}"
    return f"{parameters.rstrip()}\n{text}"
