"""What changes in the panel when a user picks a model: its trained size and its recommended settings."""

from __future__ import annotations

from .jobs import ModelChoice
from .panel_values import PanelValues


def _number(value: float) -> str:
    return f"{value:g}"


def apply_model_defaults(values: PanelValues, choice: ModelChoice) -> tuple[PanelValues, str]:
    """(the panel values with the model's size and advice applied, a one-line summary for the status bar).

    Like InvokeAI's per-model default settings: a model drawn at the wrong size or guidance
    scale looks broken (SD 1.5 at 1024 px, the embedded model at 512 px or CFG 7),
    so picking one starts from what it was made for. The prompt, seed and sampler stay.
    """
    changes: dict = {}
    parts: list[str] = []
    if choice.default_size is not None:
        width, height = choice.default_size
        changes.update(width=width, height=height)
        parts.append(f"{width}\u00d7{height}")
    advice = choice.recommended
    if advice is not None:
        changes.update(steps=advice.steps, cfg_scale=advice.cfg_scale)
        parts += [f"{advice.steps} steps", f"CFG {_number(advice.cfg_scale)}"]
        if choice.has_classifier:
            changes["classifier_scale"] = advice.classifier_scale
            if advice.classifier_scale:
                parts.append(f"classifier guidance {_number(advice.classifier_scale)}")
        # A model's spacing replaces the panel's plain one; Karras, which the user switched on, stays.
        if advice.spacing is not None and values.spacing not in ("karras", advice.spacing):
            changes["spacing"] = advice.spacing
            parts.append(f"{advice.spacing} spacing")
        if advice.strength is not None and values.strength != advice.strength:
            changes["strength"] = advice.strength
            parts.append(f"strength {_number(advice.strength)}")
        if choice.distilled_guidance and advice.distilled_cfg is not None:
            changes["distilled_cfg"] = advice.distilled_cfg
            parts.append(f"distilled CFG {_number(advice.distilled_cfg)}")
    if not changes:
        return values, ""
    return values.with_changes(**changes), f"{choice.label}: {', '.join(parts)} (its recommended settings)"
