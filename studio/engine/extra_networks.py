"""AUTOMATIC1111's extra-network tags in a prompt: ``<lora:NAME:WEIGHT>``, taken out before encoding.

``<lora:name>`` weighs 1; ``<lora:name:0.7>`` weighs both the text encoder and the
UNet parts 0.7; ``<lora:name:0.7:0.4>`` gives the UNet its own weight (A1111's
``te`` / ``unet`` multipliers). ``<lyco:...>`` is the LyCORIS extension's spelling
of the same tag. The tags are removed from the text the encoder sees, wherever
they stand, also inside prompt-editing brackets. Torch-free: the panel and the
command line read prompts with it too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .request import RequestError

TAG = re.compile(r"<(\w+):([^<>]*)>")
LORA_KINDS = ("lora", "lyco")
MAX_WEIGHT = 100.0  # A1111 takes any number; beyond this the weights are garbage, not a style


@dataclass(frozen=True)
class LoraTag:
    name: str
    te_weight: float = 1.0
    unet_weight: float = 1.0


def _weight(text: str, tag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RequestError("prompt", f"{tag}: {text!r} is not a weight; write e.g. <lora:name:0.8>") from None
    if not math.isfinite(value) or abs(value) > MAX_WEIGHT:
        raise RequestError("prompt", f"{tag}: the weight must be a number from -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}")
    return value


def extract_loras(prompt: str) -> tuple[str, tuple[LoraTag, ...]]:
    """The prompt without its LoRA tags, and the tags in order (a name given twice adds up, as in A1111)."""
    found: dict[str, LoraTag] = {}

    def take(match: re.Match) -> str:
        kind, body = match.group(1).lower(), match.group(2)
        if kind not in LORA_KINDS:
            return match.group(0)  # not ours (e.g. a hypernetwork tag): left for the caller to report
        parts = [p.strip() for p in body.split(":")]
        name = parts[0]
        if not name:
            raise RequestError("prompt", f"{match.group(0)}: the tag names no LoRA; write <lora:name:weight>")
        if len(parts) > 3:
            raise RequestError("prompt", f"{match.group(0)}: write <lora:name:weight> or <lora:name:te:unet>")
        te = _weight(parts[1], match.group(0)) if len(parts) > 1 and parts[1] else 1.0
        unet = _weight(parts[2], match.group(0)) if len(parts) > 2 and parts[2] else te
        old = found.get(name.lower())
        if old is not None:
            te, unet, name = te + old.te_weight, unet + old.unet_weight, old.name
        found[name.lower()] = LoraTag(name, te, unet)
        return ""

    text = TAG.sub(take, prompt)
    unknown = TAG.search(text)
    if unknown is not None:
        raise RequestError("prompt", f"{unknown.group(0)}: the studio runs <lora:...> tags only "
                                     f"({unknown.group(1)} is not supported)")
    # Only the ends are trimmed: A1111 leaves the rest as is (CLIP's tokenizer ignores extra spaces, and
    # keeping a comma the tag stood beside keeps the tokens, and so the picture, the same as there).
    return text.strip(), tuple(found.values())
