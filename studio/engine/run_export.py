"""A run's step history as a safetensors blob, so another Runner (another process, another machine) can branch
from it exactly as the runner that ran it would.

The blob holds tensors (sigmas, the initial noise, each step's state, generator state and sampler carry, the
request's images) and, in its header's metadata, JSON for everything else (the request's fields, the hires and
refiner marks, how each step's carry nests). Nothing is pickled: a blob from anyone can be read safely.

A blob may hold only some of the steps (``first`` > 0): the steps a run took since the last blob it sent, which
``append_states`` adds to a history that has the earlier ones (see studio/serve/run_store.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .request import ControlUnit, GenerationRequest, RequestError
from .runner import RunHistory, StepState

FORMAT = "diffusion-studio/run-state"
VERSION = 1
_IMAGES = ("init_image", "mask", "controlnets")
_CONTROL_FIELDS = ("model", "preprocessor", "weight", "start", "end")


def export_history(history: RunHistory, upto: int | None = None, first: int = 0, header: bool = True) -> bytes:
    """``history``'s steps ``first`` to ``upto`` (inclusive; None: the last one) as a safetensors blob.

    With ``header`` the blob also holds what does not change while a run goes on (the request, the schedule,
    the initial noise): a blob with it and ``first`` = 0 is enough to branch from any step it holds."""
    last = len(history.states) - 1 if upto is None else upto
    if not -1 <= last < len(history.states):
        raise RequestError("step", f"the run has steps 0 to {len(history.states) - 1}, not {upto}")
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "first": first, "header": header,
        "refiner_from": history.refiner_from, "hires_from": history.hires_from,
        "parent": list(history.parent) if history.parent is not None else None,
    }
    if history.hires_sigmas is not None:
        tensors["hires_sigmas"] = history.hires_sigmas
    if header:
        tensors["sigmas"], tensors["noise"] = history.sigmas, history.noise
        meta["request"] = _request_meta(history.request, tensors)
    states = []
    for i in range(first, last + 1):
        state = history.states[i]
        tensors[f"x.{i}"], tensors[f"rng.{i}"] = state.x, state.rng_state
        states.append({"sigma_next": _float(state.sigma_next), "carry": _flatten(state.carry, f"carry.{i}", tensors)})
    meta["states"] = states
    # Clones: safetensors refuses tensors that share memory (a carry may hold a view of the schedule).
    owned = {name: t.detach().to("cpu").clone().contiguous() for name, t in tensors.items()}
    return save_tensors(owned, metadata={"run": json.dumps(meta, allow_nan=False)})


def import_history(blob: bytes, device: str | torch.device = "cpu") -> RunHistory:
    """A RunHistory from a blob with a header (its run id 0 and no parent: ids are local to each runner, see
    Runner.adopt). Carry tensors that were on an accelerator go to ``device``; states stay on the CPU, as the
    runner keeps them. RequestError ("branch") when the blob is not a run state this studio can read."""
    meta, tensors = _read(blob)
    if not meta.get("header"):
        raise RequestError("branch", "this state holds only some steps of a run, not its start")
    try:
        request = _request_from_meta(meta["request"], tensors)
        history = RunHistory(0, request, tensors["sigmas"], tensors["noise"], [], None)
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestError("branch", f"the state's header cannot be read ({exc})") from exc
    if meta["first"] != 0:
        raise RequestError("branch", "this state does not start at the run's first step")
    _apply(history, meta, tensors, device)
    return history


def append_states(history: RunHistory, blob: bytes, device: str | torch.device = "cpu") -> None:
    """Add a blob's steps (and its hires / refiner marks) to ``history``, which must hold the steps before them."""
    meta, tensors = _read(blob)
    if meta["first"] != len(history.states):
        raise RequestError("branch", f"these steps start at {meta['first']}, the history has {len(history.states)}")
    _apply(history, meta, tensors, device)


def _apply(history: RunHistory, meta: dict, tensors: dict[str, torch.Tensor], device) -> None:
    try:
        for i, state in enumerate(meta["states"], start=meta["first"]):
            carry = _unflatten(state["carry"], tensors, torch.device(device))
            history.states.append(StepState(float(state["sigma_next"]), tensors[f"x.{i}"], carry, tensors[f"rng.{i}"]))
        history.refiner_from, history.hires_from = meta["refiner_from"], meta["hires_from"]
        history.hires_sigmas = tensors.get("hires_sigmas", history.hires_sigmas)
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestError("branch", f"the state's steps cannot be read ({exc})") from exc


def _read(blob: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        blob = bytes(blob)
        tensors = load_tensors(blob)
        meta = json.loads(_metadata(blob))  # load() returns the tensors only
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise RequestError("branch", f"the state is not a run state this studio wrote ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RequestError("branch", "the state is not a run state this studio wrote")
    if meta.get("version") != VERSION:
        raise RequestError("branch", f"the state is version {meta.get('version')}; this studio reads {VERSION}")
    return meta, tensors


def _metadata(blob: bytes) -> str:
    """The "run" entry of a safetensors header's __metadata__ (the header is JSON after an 8-byte length)."""
    size = int.from_bytes(blob[:8], "little")
    if not 0 < size <= len(blob) - 8:
        raise ValueError("the header's length is wrong")
    return json.loads(blob[8:8 + size])["__metadata__"]["run"]


def _float(value: float) -> float | str:
    return value if math.isfinite(value) else repr(value)  # "inf" / "nan": JSON has no such numbers


# ---- the sampler's carry: None, numbers, tensors, and lists / tuples / dicts of them ---------------------------

def _flatten(value: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON, its tensors moved into ``tensors`` under names starting with ``name``."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        tensors[name] = value
        return {"tensor": name, "device": value.device.type}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(value)}  # as text: a seed-sized int is more than JSON numbers promise to keep
    if isinstance(value, float):
        return {"float": _float(value)}
    if isinstance(value, list | tuple):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_flatten(v, f"{name}.{j}", tensors) for j, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _flatten(v, f"{name}.{k}", tensors) for k, v in value.items()}}
    raise TypeError(f"a sampler carry of type {type(value).__name__} cannot be exported")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor], device: torch.device) -> Any:
    if value is None:
        return None
    if "tensor" in value:
        tensor = tensors[value["tensor"]]
        return tensor.to(device) if value.get("device", "cpu") != "cpu" else tensor
    if len(value) != 1:
        raise ValueError(f"a carry entry has keys {sorted(value)}")
    (kind, inner), = value.items()
    if kind == "bool":
        return bool(inner)
    if kind == "int":
        return int(inner)
    if kind == "float":
        return float(inner)
    if kind in ("list", "tuple"):
        items = [_unflatten(v, tensors, device) for v in inner]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _unflatten(v, tensors, device) for k, v in inner.items()}
    raise ValueError(f"unknown carry entry {kind!r}")


# ---- the request: its fields as JSON, its images as tensors -----------------------------------------------------

def _request_meta(request: GenerationRequest, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(GenerationRequest):
        if f.name in _IMAGES:
            continue
        value = getattr(request, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} is not finite")
        out[f.name] = list(value) if isinstance(value, tuple) else value
    if request.init_image is not None:
        tensors["request.init_image"] = torch.from_numpy(np.ascontiguousarray(request.init_image))
    if request.mask is not None:
        tensors["request.mask"] = torch.from_numpy(np.ascontiguousarray(request.mask))
    units = []
    for j, unit in enumerate(request.controlnets):
        units.append({key: getattr(unit, key) for key in _CONTROL_FIELDS})
        if unit.image is not None:
            tensors[f"request.control.{j}"] = torch.from_numpy(np.ascontiguousarray(unit.image))
    out["controlnets"] = units
    return out


def _request_from_meta(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> GenerationRequest:
    known = {f.name for f in fields(GenerationRequest)}
    values = {k: v for k, v in meta.items() if k in known and k not in _IMAGES}
    if values.get("guidance_interval") is not None:
        values["guidance_interval"] = tuple(values["guidance_interval"])

    def image(name: str) -> np.ndarray | None:
        return tensors[name].numpy() if name in tensors else None

    units = tuple(ControlUnit(**u, image=image(f"request.control.{j}")) for j, u in enumerate(meta["controlnets"]))
    return GenerationRequest(**values, init_image=image("request.init_image"), mask=image("request.mask"),
                             controlnets=units)
