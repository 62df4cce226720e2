"""The prompt's ``<lora:NAME:WEIGHT>`` tags -> LoRAs merged into the model, tags out of the encoder's text.

Tags are read from the prompt and the negative prompt (before prompt editing is parsed, so a tag
inside ``[a:b:0.5]`` works and holds for the whole run), names resolve through the runner's
AdapterLibrary as AUTOMATIC1111 resolves them, and the model's LoRA state is set to exactly that
set: a prompt without tags takes every LoRA out again. The run's parameters get "Lora hashes".
"""

from __future__ import annotations

from dataclasses import dataclass

from .extra_networks import LORA_KINDS, TAG, LoraTag, extract_loras
from .models.sd.adapter_files import AdapterLibrary
from .models.sd.lora import LoraUse
from .models.sd.lora_hash import lora_hashes_value
from .request import GenerationRequest, RequestError


@dataclass(frozen=True)
class PromptLoras:
    prompt: str  # without its LoRA tags
    negative_prompt: str
    infotext: tuple[tuple[str, str], ...]  # ("Lora hashes", "name: 0123456789ab, ...") when any ran
    notices: tuple[str, ...] = ()  # parts of a LoRA file this model has no layer for


def _combined(*groups: tuple[LoraTag, ...]) -> list[LoraTag]:
    found: dict[str, LoraTag] = {}
    for tags in groups:
        for tag in tags:
            old = found.get(tag.name.lower())
            found[tag.name.lower()] = tag if old is None else LoraTag(
                old.name, old.te_weight + tag.te_weight, old.unet_weight + tag.unet_weight)
    return list(found.values())


def apply_prompt_loras(model, adapters: AdapterLibrary, request: GenerationRequest) -> PromptLoras:
    """Merge the LoRAs the request's prompts name into ``model`` (and only those); RequestError when one cannot be."""
    loras = getattr(model, "loras", None)
    if loras is None:
        # A model without LoRA support reads its prompt as it always has; only a LoRA tag is refused.
        for text in (request.prompt, request.negative_prompt):
            for match in TAG.finditer(text):
                if match.group(1).lower() in LORA_KINDS:
                    raise RequestError("prompt", f"model {model.info.name!r} cannot use LoRAs ({match.group(0)} in "
                                                 "the prompt); remove the tag or load a Stable Diffusion model")
        return PromptLoras(request.prompt, request.negative_prompt, ())
    prompt, tags = extract_loras(request.prompt)
    negative, negative_tags = extract_loras(request.negative_prompt)
    tags = _combined(tags, negative_tags)
    files = [adapters.find("lora", tag.name) for tag in tags]

    notices = loras.activate([LoraUse(f.path, t.name, t.te_weight, t.unet_weight)
                              for f, t in zip(files, tags, strict=True)])
    infotext = ()
    if files:
        try:
            value = lora_hashes_value([(t.name, f.path) for f, t in zip(files, tags, strict=True)])
            infotext = (("Lora hashes", value),)
        except OSError:
            infotext = ()  # the file went away after merging: the image is made, only its hash is unknown
    return PromptLoras(prompt, negative, infotext, notices)
