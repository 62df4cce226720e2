"""The runner: a GenerationRequest in, StepEvents out, a Result at the end.

It keeps every run's step history (state, sampler carry and generator state
after each step) so that a run can branch from any step k; branching with
unchanged settings replays the uninterrupted run bit for bit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .denoisers import Cond, Denoiser
from .devices import free_memory_bytes
from .guidance import StepConditioning, classifier_free_guidance, classifier_guidance, dynamic_thresholding
from .hires import HiresPass, check_upscaler, hires_pass, second_pass_noise, upscaled_latent
from .inpaint import composite, feather_mask, inpainting_denoiser, mask_to_latent
from .inpaint_area import masked_area
from .inpaint_models import inpainting_conditioning
from .limits import max_side, run_memory_bytes
from .lora_activation import apply_prompt_loras
from .masked_content import fill_masked, start_latent
from .models.base import ClassifierGrad, DiffusionModel
from .models.sd.adapter_files import AdapterLibrary
from .models.sd.controlnet import ControlNetCache, prepare_control
from .models.sd.refiner_files import LoadedRefiner, RefinerSlot, place_unets, refiner_infotext
from .noise import initial_noise
from .prompt_schedule import prompts_per_step
from .refiner import ModelSwitch, refiner_steps
from .request import GenerationRequest, RequestError, Result, StepEvent, validate_request
from .run_ids import next_run_id
from .samplers import SamplerStep, get_sampler, randn_like
from .schedules import sampling_sigmas, schedule_at_size
from .tiled_diffusion import model_tiled_denoiser, use_vae_tiles


class Cancelled(Exception):
    """Raised out of Runner.run when the cancel check says stop; the runner stays usable."""

    def __init__(self, run_id: int, step: int):
        super().__init__(f"run {run_id} cancelled before step {step}")
        self.run_id = run_id
        self.step = step


class NonFiniteError(RuntimeError):
    """The model produced NaN or infinite values."""


@dataclass(frozen=True, eq=False)
class StepState:
    sigma_next: float  # noise level of x
    x: torch.Tensor  # state after the step, on the CPU
    carry: Any  # sampler multistep memory
    rng_state: torch.Tensor  # the generator's state after the step


@dataclass(eq=False)
class RunHistory:
    run_id: int
    request: GenerationRequest
    sigmas: torch.Tensor
    noise: torch.Tensor  # the initial noise draw (inpainting re-noises with it)
    states: list[StepState]
    parent: tuple[int, int] | None = None
    refiner_from: int | None = None  # the lineage step where the SDXL refiner took over, if it did
    hires_from: int | None = None  # the lineage step where the hires fix's second pass began, once it has
    hires_sigmas: torch.Tensor | None = None  # the second pass's schedule, as it ran


@dataclass(eq=False)
class _Pass:
    """One pass of sampler steps (a run has one, or two with the hires fix): what the step loop needs."""

    sigmas: torch.Tensor
    start: int  # the index of ``sigmas`` this run steps from first
    offset: int  # a step's lineage index is its index in ``sigmas`` plus this
    denoise: Denoiser
    cond: Cond
    conditioning: StepConditioning | ModelSwitch | None  # set to each step's index in ``schedule_offset`` terms
    control: Any
    carry: Any = None
    schedule_offset: int = 0  # index in ``sigmas`` + this = the step of the prompt and ControlNet schedules


@dataclass(eq=False)
class _Steps:
    """What every step of one run reports to and records in, whichever pass it belongs to."""

    run_id: int
    request: GenerationRequest
    history: RunHistory
    generator: torch.Generator
    total: int  # steps in the whole lineage, both passes
    started: float
    on_step: Callable[[StepEvent], None] | None
    should_cancel: Callable[[], bool] | None
    switch_at: int | None = None  # the lineage step where the SDXL refiner takes over
    ran: int = 0  # steps this run has taken so far


def _interpolation_sigmas(full: torch.Tensor, sigma: float) -> torch.Tensor:
    """Start a schedule at ``sigma``: keep the part of ``full`` strictly below it."""
    below = full[full < sigma - 1e-6]
    return torch.cat([full.new_tensor([sigma]), below])


def _continuation(sigmas: torch.Tensor, ran: torch.Tensor | None, k: int, state: StepState,
                  same_sampler: bool) -> tuple[torch.Tensor, int, Any]:
    """(sigmas, start, carry) for continuing after step ``k`` of a pass that ran on ``ran``, whose state after
    that step is ``state``: the same schedule goes on from k + 1 (with the sampler's memory when the sampler
    is the same); a new spacing or step count continues from the state's noise level on the new schedule."""
    if ran is not None and torch.equal(sigmas, ran):
        return sigmas, k + 1, state.carry if same_sampler else None
    return _interpolation_sigmas(sigmas, state.sigma_next), 0, None


class Runner:
    """Runs requests against one model; owned by a single thread."""

    def __init__(self, model: DiffusionModel, keep_histories: int = 32, adapters: AdapterLibrary | None = None):
        self.model = model
        # Where LoRAs, embeddings and ControlNets named in requests are found (None: nowhere but paths).
        self.adapters = adapters if adapters is not None else AdapterLibrary(include_defaults=False)
        self.keep_histories = keep_histories
        self.controlnets = ControlNetCache()  # loaded ControlNets, by file
        self.notices: tuple[str, ...] = ()  # the last run's notes on LoRA layers this model lacks
        self._refiners: RefinerSlot | None = None  # the SDXL refiner kept beside the model, made when first asked
        self._histories: OrderedDict[int, RunHistory] = OrderedDict()

    def history(self, run_id: int) -> RunHistory | None:
        return self._histories.get(run_id)

    def adopt(self, history: RunHistory) -> int:
        """Keep a run another runner ran (see run_export.import_history) under a new run id of this runner's, so
        ``run(..., branch_from=(id, k))`` continues it exactly as that runner would."""
        history.run_id = next_run_id()
        self._remember(history)
        return history.run_id

    def run(
        self,
        request: GenerationRequest,
        on_step: Callable[[StepEvent], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        branch_from: tuple[int, int] | None = None,
    ) -> Result:
        """Run ``request``; with ``branch_from=(run_id, k)`` continue that run after its step k."""
        model = self.model
        validate_request(request, model.info.size_multiple, max_side(model.info.family), repr(model.info.name))
        # "Only masked": the run works on a crop at the request's size; the result is pasted into the photo.
        area = masked_area(request)
        whole, request = request, area.request if area is not None else request
        second = hires_pass(model, request)  # the hires fix's second pass; None when it is off
        self._check_memory(request, second)
        check_upscaler(request, self.adapters)  # a misspelt upscaler costs no first pass
        if request.clip_skip != 1 and not model.info.clip_skip:
            raise RequestError("clip_skip", f"model {model.info.name!r} has no CLIP layers to skip; set it to 1")
        # LoRAs are merged before anything is encoded, and the encoder reads the prompts without their tags.
        loras = apply_prompt_loras(model, self.adapters, request)
        self.notices = loras.notices
        run_id = next_run_id()  # unique in the process, not only in this runner (run_ids.py)
        started = time.perf_counter()
        device = model.device

        scale = model.info.latent_scale
        latent_shape = (1, model.info.latent_channels, request.height // scale, request.width // scale)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        # Models may shift leading timesteps (Stable Diffusion's steps_offset=1); flow models shift by size.
        schedule = schedule_at_size(model.schedule, request.width, request.height)
        sigmas = sampling_sigmas(schedule, request.steps, request.spacing, getattr(model, "steps_offset", 0))

        init_latent = latent_mask = None
        use_vae_tiles(model, request)
        if request.init_image is not None:
            filled = request.mask is not None and request.masked_content != "original"
            start_image = request.init_image if not filled else fill_masked(
                request.init_image, feather_mask(request.mask, request.mask_feather))
            init_latent = model.encode_image(start_image)
            if not torch.isfinite(init_latent).all():
                raise RequestError("init_image", "encoding the init image gave non-finite values")
            skip = request.steps - min(int(request.steps * request.strength), request.steps)
            sigmas = sigmas[skip:]
        if request.mask is not None:
            latent_mask = mask_to_latent(
                feather_mask(request.mask, request.mask_feather / scale if scale > 1 else request.mask_feather),
                latent_shape[-2:], device).to(model.dtype)

        parent, x = None, None
        if branch_from is None:
            noise = initial_noise(latent_shape, generator, request.variation_seed, request.variation_strength,
                                  device, model.dtype)
            start, carry, kept = 0, None, []
        else:
            x, sigmas, noise, start, carry, kept, parent = self._resume(branch_from, request, sigmas, generator,
                                                                        second is not None)
        if latent_mask is not None:  # masked content: fill was painted above, the latent choices apply here
            init_latent = start_latent(init_latent, latent_mask, request.masked_content, noise)
        if x is None:
            x = noise * sigmas[0] if init_latent is None else init_latent + noise * sigmas[0]

        # Event indices count from the start of the lineage, so a branch's steps follow its parent's.
        offset = len(kept) - start
        total = len(sigmas) - 1 + offset
        use_embeddings = getattr(model, "use_embeddings", None)
        if use_embeddings is not None:  # a model that reads textual-inversion embeddings named in prompts
            use_embeddings(self.adapters.list("embedding"))
        denoise, cond, conditioning = self._conditioned_denoiser(request, total, loras.prompt, loras.negative_prompt)
        control = prepare_control(model, request, self.adapters, self.controlnets, total)
        refiner, switch_at = self._refiner(request), None
        if refiner is not None:
            prompts = (loras.prompt, loras.negative_prompt)
            denoise, switch_at = self._model_switch(request, prompts, refiner, (denoise, cond, conditioning),
                                                    sigmas, start, offset, total)
            cond, conditioning = None, denoise
            switch_at = self._lineage_switch(parent, switch_at)
        # Inpainting checkpoints see the mask and the masked image as conditioning instead of the blend.
        if latent_mask is not None and not model.info.inpainting:
            denoise = inpainting_denoiser(denoise, init_latent, latent_mask, noise)

        history = RunHistory(run_id, request, sigmas, noise.cpu(), list(kept), parent, switch_at)
        self._remember(history)  # now, so the steps of a cancelled run can be branched from too
        run = _Steps(run_id, request, history, generator, total + (second.steps if second else 0), started, on_step,
                     should_cancel, switch_at)
        x = self._sample(run, _Pass(sigmas, start, offset, denoise, cond, conditioning, control, carry, offset), x)
        if second is not None:
            # A branch from a second-pass step took only the first pass's steps from its parent (see _resume).
            hires_branch = branch_from if branch_from is not None and branch_from[1] >= len(kept) else None
            x = self._second_pass(run, second, x, (loras.prompt, loras.negative_prompt), hires_branch)

        decode_gen = torch.Generator("cpu").manual_seed((request.seed + 1) % 2**63)
        # The refiner's VAE decodes a run it refined (SDXL's base and refiner ship the same VAE).
        refined = refiner is not None and switch_at is not None
        use_vae_tiles(refiner.model if refined else model, request)
        image = (refiner.model if refined else model).decode(x, generator=decode_gen)
        refiner_pairs = refiner_infotext(refiner, request) if refined else ()
        finish = None if refined else getattr(model, "finish_image", None)
        if finish is not None:  # the emoji colouriser keeps the grey picture's own luminance (models/palette.py)
            image = finish(image, request)
        if request.mask is not None:
            image = self._paste_known(image, request)
        if area is not None:
            image = area.paste(image)
        infotext = getattr(model, "prompt_infotext", tuple)()  # e.g. the embeddings' TI hashes
        if model.info.distilled_guidance:  # Flux's guidance input, as Forge names it
            infotext += (("Distilled CFG Scale", f"{request.distilled_cfg:g}"),)
        return Result(run_id, whole, image, x[0].float().cpu().numpy(), run.ran,
                      time.perf_counter() - started, parent,
                      loras.infotext + infotext + (control.infotext if control else ()) + refiner_pairs)

    def _sample(self, run: _Steps, p: _Pass, x: torch.Tensor) -> torch.Tensor:
        """Run the pass's steps from ``p.start`` on ``x``; each one is recorded, reported and cancellable."""
        model, request, generator, carry = self.model, run.request, run.generator, p.carry
        spec = get_sampler(request.sampler)
        captured: list[SamplerStep] = []
        extra = {"eta": request.eta} if spec.name == "ddim" else {}
        sigmas, denoise, cond, offset = p.sigmas, p.denoise, p.cond, p.offset
        for i in range(p.start, len(sigmas) - 1):
            if run.should_cancel is not None and run.should_cancel():
                raise Cancelled(run.run_id, i + offset)
            if p.conditioning is not None:
                p.conditioning.step = i + p.schedule_offset
            if p.control is not None:
                p.control.step = i + p.schedule_offset
            for _ in range(request.resample if request.mask is not None and i < len(sigmas) - 2 else 0):
                # RePaint (Lugmayr et al. 2022): step down, re-noise back up, step again. Each pass is
                # a network evaluation, so a cancel is checked before each one too.
                if run.should_cancel is not None and run.should_cancel():
                    raise Cancelled(run.run_id, i + offset)
                x = spec.fn(denoise, x, sigmas[i:i + 2], cond=cond, generator=generator, carry=carry, **extra)
                x = x + randn_like(x, generator) * (sigmas[i] ** 2 - sigmas[i + 1] ** 2).sqrt()
            captured.clear()
            x = spec.fn(denoise, x, sigmas[i:i + 2], cond=cond, generator=generator, carry=carry,
                        callback=captured.append, **extra)
            step = captured[-1]
            carry = step.carry
            if not torch.isfinite(step.denoised).all():
                raise NonFiniteError(
                    f"the model produced NaN or infinite values at step {i + 1}; "
                    "try a lower CFG scale, or full precision (fp32)")
            run.history.states.append(StepState(float(sigmas[i + 1]), x.cpu(), carry, generator.get_state()))
            run.ran += 1
            if run.on_step is not None:
                run.on_step(StepEvent(run.run_id, i + offset, run.total, float(sigmas[i]), model.preview(step.denoised),
                                      x[0].float().cpu().numpy(), time.perf_counter() - run.started,
                                      model_switch=i + offset == run.switch_at,
                                      hires_start=i + offset == run.history.hires_from))
        return x

    def _second_pass(self, run: _Steps, second: HiresPass, x: torch.Tensor, prompts: tuple[str, str],
                     branch_from: tuple[int, int] | None) -> torch.Tensor:
        """The hires fix's pass after the first one's last step (``x``), or continued from ``branch_from``,
        a step of the parent's second pass."""
        history, generator = run.history, run.generator
        if branch_from is None:
            history.hires_from = len(history.states)
            x = upscaled_latent(self.model, x, run.request, second, (run.request.seed + 1) % 2**63, self.adapters)
            noise = second_pass_noise(self.model, x, run.request, generator)
            sigmas, start, carry = second.sigmas, 0, None
            x = x + noise * sigmas[0]
        else:
            parent, k = self._histories[branch_from[0]], branch_from[1]
            state = parent.states[k]
            generator.set_state(state.rng_state)
            x = state.x.to(self.model.device)
            history.hires_from = parent.hires_from
            history.states.extend(parent.states[len(history.states):k + 1])
            same_sampler = get_sampler(run.request.sampler).name == get_sampler(parent.request.sampler).name
            sigmas, start, carry = _continuation(second.sigmas, parent.hires_sigmas, k - parent.hires_from, state,
                                                 same_sampler)
        history.hires_sigmas = sigmas
        offset = len(history.states) - start
        run.total = offset + len(sigmas) - 1
        local = run.total - history.hires_from  # the second pass's steps in this lineage, for its own schedules
        denoise, cond, conditioning = self._conditioned_denoiser(second.request, local, *prompts)
        control = prepare_control(self.model, second.request, self.adapters, self.controlnets, local)
        own = _Pass(sigmas, start, offset, denoise, cond, conditioning, control, carry, offset - history.hires_from)
        return self._sample(run, own, x)

    def _check_memory(self, request: GenerationRequest, second: HiresPass | None = None) -> None:
        """Refuse a run that cannot fit in memory before allocating any of it (a RequestError on the size).
        With the hires fix, the host keeps both passes' steps and the device works at the larger size."""
        info, device = self.model.info, torch.device(self.model.device)
        host, work = run_memory_bytes(request.width, request.height, request.steps, info.latent_channels,
                                      info.latent_scale, info.family, request.tile_size)
        if second is not None:
            larger = second.request
            host2, work2 = run_memory_bytes(larger.width, larger.height, second.steps, info.latent_channels,
                                            info.latent_scale, info.family, larger.tile_size)
            host, work = host + host2, max(work, work2)
            request = larger  # the size the message names
        needs = [(host + work, "cpu")] if device.type == "cpu" else [(host, "cpu"), (work, device.type)]
        for need, where in needs:
            free = free_memory_bytes(torch.device(where))
            if free is not None and need > free:
                raise RequestError(
                    "width", f"{request.width}x{request.height} with {request.steps} steps needs at least "
                             f"{need / 2**30:.1f} GiB of {where} memory and {free / 2**30:.1f} GiB is free; "
                             "choose a smaller size or fewer steps")

    def _refiner(self, request: GenerationRequest) -> LoadedRefiner | None:
        """The request's SDXL refiner, loaded (cached); None without one. The base's UNet is put back on
        its device first when a refiner run left it on the CPU."""
        slot = self._refiners
        if not request.refiner.strip():
            if slot is not None and slot.loaded is not None:
                place_unets(self.model, slot.loaded.model)
            return None
        if slot is None:
            folders = [Path(f) for f in self.adapters.model_folders]
            if self.adapters.checkpoint is not None:
                folders.insert(0, Path(self.adapters.checkpoint).expanduser().parent)
            slot = self._refiners = RefinerSlot(folders, self.adapters.include_defaults)
        return slot.get(request.refiner.strip(), self.model)

    def _model_switch(self, request, prompts: tuple[str, str], refiner: LoadedRefiner, base: tuple,
                      sigmas: torch.Tensor, start: int, offset: int, total: int) -> tuple[ModelSwitch, int | None]:
        """The denoiser that hands the refiner its steps, and the lineage step where it first runs (if any)."""
        # Lineage steps before this run's first one ran already (in the parent): they are not this run's.
        on_refiner = [False] * (start + offset) + refiner_steps(self.model.schedule, sigmas[start:],
                                                                request.refiner_switch)
        model, other = self.model, refiner.model

        def prepare(name: str) -> None:
            place_unets(*((other, model) if name == "refiner" else (model, other)))

        switch = ModelSwitch(base, self._conditioned_denoiser(request, total, *prompts, refiner.model), on_refiner,
                             prepare)
        first = next((j for j, on in enumerate(on_refiner) if on), None)
        return switch, first

    def _lineage_switch(self, parent: tuple[int, int] | None, first: int | None) -> int | None:
        """Where the refiner took over in this run's lineage: in the parent's kept steps, or in this run."""
        if parent is not None:
            history = self._histories.get(parent[0])
            if history is not None and history.refiner_from is not None and history.refiner_from <= parent[1]:
                return history.refiner_from
        return first

    def _conditioned_denoiser(
        self, request: GenerationRequest, steps: int, prompt: str, negative_prompt: str,
        model: DiffusionModel | None = None,
    ) -> tuple[Denoiser, Cond, StepConditioning | None]:
        """The guided denoiser and its cond; with prompt editing or alternation, a per-step switch.

        Each distinct (prompt, negative prompt) of the schedule is encoded once, as a pair: a
        model may size the two to each other (Stable Diffusion pads both to the same chunks).
        """
        model = model or self.model
        steps = max(steps, 1)  # img2img at a tiny strength runs no step, but still has a prompt
        prompts = zip(prompts_per_step(prompt, steps), prompts_per_step(negative_prompt, steps), strict=True)
        pair_of: dict[tuple[str, str], int] = {}
        per_step = [pair_of.setdefault(pair, len(pair_of)) for pair in prompts]
        grad = self._classifier_grad(request, model)
        image_cond = inpainting_conditioning(model, request)  # None, or the same for cond and uncond
        pairs = []
        for prompt, negative in pair_of:
            cond, uncond = model.encode_prompt(prompt, negative, request.width, request.height,
                                               clip_skip=request.clip_skip)
            if image_cond is not None:
                cond, uncond = {**cond, **image_cond}, {**uncond, **image_cond}
            if model.info.distilled_guidance:  # Flux dev: the guidance strength is an input of the network
                guidance = {"guidance": torch.tensor([request.distilled_cfg], device=model.device)}
                cond, uncond = {**cond, **guidance}, {**uncond, **guidance}
            pairs.append((self._guided_denoiser(request, uncond, grad, model), cond))
        if len(pairs) == 1:
            return pairs[0][0], pairs[0][1], None
        conditioning = StepConditioning(pairs, per_step)
        return conditioning, None, conditioning

    def _classifier_grad(self, request: GenerationRequest, model: DiffusionModel) -> ClassifierGrad | None:
        if request.classifier_scale == 0:
            return None
        grad = model.classifier_grad()
        if grad is None:
            raise RequestError("classifier_scale", f"model {model.info.name!r} has no classifier; set it to 0")
        return grad

    def _guided_denoiser(self, request: GenerationRequest, uncond: Cond, grad: ClassifierGrad | None,
                         model: DiffusionModel) -> Denoiser:
        denoise = model.denoiser()
        if request.tile_size:  # MultiDiffusion: the network sees one tile at a time, guidance the whole latent
            denoise = model_tiled_denoiser(model, denoise, request.tile_size)
        if request.cfg_scale != 1.0:
            denoise = classifier_free_guidance(
                denoise, uncond, request.cfg_scale, request.guidance_rescale, request.guidance_interval)
        if grad is not None:
            denoise = classifier_guidance(denoise, grad, request.classifier_scale)
        if request.dynamic_threshold is not None:
            denoise = dynamic_thresholding(denoise, request.dynamic_threshold)
        return denoise

    def _resume(self, branch_from, request, sigmas, generator, hires: bool = False):
        """Where a branch from (run, k) continues the first pass: (x, sigmas, noise, start, carry, kept steps,
        parent). From a step of the hires fix's second pass the first pass is complete: its steps are kept
        and none is left to run (the second pass continues in _second_pass)."""
        parent_id, k = branch_from
        parent = self._histories.get(parent_id)
        if parent is None:
            raise RequestError("branch", f"run {parent_id} is no longer kept; branch from a recent run")
        if not 0 <= k < len(parent.states):
            raise RequestError("branch", f"run {parent_id} has steps 0 to {len(parent.states) - 1}, not {k}")
        state = parent.states[k]
        if not torch.isfinite(state.x).all():
            raise RequestError("branch", f"the latent at step {k} holds NaN or infinite values")
        noise = parent.noise.to(self.model.device)
        if parent.hires_from is not None and k >= parent.hires_from:
            if not hires:
                raise RequestError("hires_scale", f"step {k + 1} belongs to the hires fix's pass; switch hires "
                                                  "fix on to continue it, or branch from an earlier step")
            first = parent.hires_from
            return (parent.states[first - 1].x.to(self.model.device), parent.sigmas, noise, len(parent.sigmas) - 1,
                    None, parent.states[:first], (parent_id, k))
        generator.set_state(state.rng_state)
        x = state.x.to(self.model.device)
        same_sampler = get_sampler(request.sampler).name == get_sampler(parent.request.sampler).name
        sigmas, start, carry = _continuation(sigmas, parent.sigmas, k, state, same_sampler)
        return x, sigmas, noise, start, carry, parent.states[: k + 1], (parent_id, k)

    def _remember(self, history: RunHistory) -> None:
        self._histories[history.run_id] = history
        while len(self._histories) > self.keep_histories:
            self._histories.popitem(last=False)

    @staticmethod
    def _paste_known(image: np.ndarray, request: GenerationRequest) -> np.ndarray:
        original, mask = request.init_image[..., :3], feather_mask(request.mask, request.mask_feather)
        if image.shape[:2] != original.shape[:2]:
            from PIL import Image

            size = (image.shape[1], image.shape[0])
            original = np.asarray(Image.fromarray(original).resize(size, Image.Resampling.LANCZOS))
            mask = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize(size)) / 255.0
        return composite(image, original, mask)
