"""Infotexts as other tools write them (strings taken from their source): AUTOMATIC1111 before and after
1.9, Forge, and ComfyUI image-saver nodes. A sampler the studio does not have is named, never replaced."""

import pytest

from studio.engine.request import GenerationRequest
from studio.io.parameters import parse_parameters

BASE = GenerationRequest(sampler="heun", spacing="leading", seed=5, cfg_scale=4.0)


def parse(last_line: str, base: GenerationRequest = BASE):
    return parse_parameters(f"a cat\nNegative prompt: blurry\n{last_line}", base)


@pytest.mark.parametrize(("line", "sampler", "spacing"), [
    # A1111 1.9+ (modules/sd_samplers_kdiffusion.py: DPM++ 2M's default scheduler is karras, so
    # "Automatic" for it is Karras; the others default to Uniform, timesteps evenly over the range).
    ("Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768", "dpmpp_2m",
     "karras"),
    ("Steps: 25, Sampler: DPM++ 2M, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x768", "dpmpp_2m",
     "karras"),
    ("Steps: 25, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x768", "euler_a",
     "linspace"),
    ("Steps: 25, Sampler: Euler, Schedule type: Uniform, CFG scale: 7, Seed: 1, Size: 512x768", "euler", "linspace"),
    ("Steps: 25, Sampler: Heun, Schedule type: SGM Uniform, CFG scale: 7, Seed: 1, Size: 512x768", "heun",
     "trailing"),
    ("Steps: 25, Sampler: DDIM, Schedule type: DDIM, CFG scale: 7, Seed: 1, Size: 512x768", "ddim", "leading"),
    # A1111 before 1.9 folded the schedule into the sampler's name.
    ("Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x512", "dpmpp_2m", "karras"),
    ("Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512", "euler_a", "leading"),
    # Forge on Flux: Simple is ComfyUI's schedule, stepping down from the last timestep (trailing).
    ("Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 7, "
     "Size: 896x1152, Model: flux1-dev-bnb-nf4-v2", "euler", "trailing"),
    # comfy-image-saver: f"Sampler: {sampler_name}_{scheduler}" unless the scheduler is "normal", "CFG Scale".
    ("Steps: 20, Sampler: dpmpp_2m_karras, CFG Scale: 8.0, Seed: 42, Size: 512x512, Model hash: 6ce0161689, "
     "Model: v1-5-pruned-emaonly, Version: ComfyUI", "dpmpp_2m", "karras"),
    ("Steps: 20, Sampler: euler_ancestral, CFG Scale: 8.0, Seed: 42, Size: 512x512, Version: ComfyUI",
     "euler_a", "leading"),
    ("Steps: 20, Sampler: euler_simple, CFG Scale: 8.0, Seed: 42, Size: 512x512, Version: ComfyUI", "euler",
     "trailing"),
    ("Steps: 20, Sampler: ddim_ddim_uniform, CFG Scale: 8.0, Seed: 42, Size: 512x512, Version: ComfyUI", "ddim",
     "leading"),
    ("Steps: 20, Sampler: heun_sgm_uniform, CFG Scale: 8.0, Seed: 42, Size: 512x512, Version: ComfyUI", "heun",
     "trailing"),
    # Other ComfyUI savers: the scheduler after a space, or in a key of its own.
    ("Steps: 20, Sampler: dpmpp_2m karras, CFG scale: 6, Seed: 3, Size: 1024x1024, Clip skip: 2", "dpmpp_2m",
     "karras"),
    ("Steps: 20, Sampler: euler_ancestral, Scheduler: karras, CFG scale: 6, Seed: 3, Size: 1024x1024", "euler_a",
     "karras"),
    ("Steps: 20, Sampler: Euler, Scheduler type: normal, CFG scale: 6, Seed: 3, Size: 1024x1024", "euler",
     "linspace"),
])
def test_samplers_and_schedules_of_other_tools(line, sampler, spacing):
    parsed = parse(line)
    assert (parsed.request.sampler, parsed.request.spacing) == (sampler, spacing)
    assert parsed.missing_sampler == ""
    assert parsed.request.prompt == "a cat" and parsed.request.negative_prompt == "blurry"


@pytest.mark.parametrize(("written", "named"), [
    ("UniPC", "UniPC"), ("DPM++ SDE", "DPM++ SDE"), ("DPM++ SDE Karras", "DPM++ SDE Karras"),
    ("DPM++ 2M SDE", "DPM++ 2M SDE"), ("uni_pc_bh2", "uni_pc_bh2"), ("dpmpp_sde_karras", "dpmpp_sde_karras"),
    ("LCM", "LCM"), ("lms", "lms"),
])
def test_a_sampler_the_studio_lacks_is_named_and_the_current_one_kept(written, named):
    parsed = parse(f"Steps: 20, Sampler: {written}, CFG scale: 7, Seed: 9, Size: 512x512")
    assert parsed.missing_sampler == named
    assert parsed.request.sampler == "heun"  # the base's, not a look-alike
    assert any(named in n and "not in this studio" in n for n in parsed.notices)
    assert parsed.request.seed == 9  # everything else is read


def test_a_schedule_the_studio_lacks_is_reported_and_the_spacing_kept():
    parsed = parse("Steps: 20, Sampler: DPM++ 2M, Schedule type: Exponential, CFG scale: 7, Seed: 9, Size: 64x64")
    assert (parsed.request.sampler, parsed.request.spacing) == ("dpmpp_2m", "leading")
    assert any("Exponential is not in this studio" in n for n in parsed.notices)
    civitai = parse("Steps: 20, Sampler: DPM++ 2M Exponential, CFG scale: 7, Seed: 9, Size: 64x64")
    assert civitai.request.sampler == "dpmpp_2m" and any("exponential is not" in n for n in civitai.notices)


def test_forge_distilled_cfg_is_read_into_the_request():
    parsed = parse("Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, "
                   "Seed: 7, Size: 896x1152, Model hash: 7d3a8dd4e1, Model: flux1-dev-bnb-nf4-v2, Module 1: ae")
    assert parsed.request.distilled_cfg == 3.5 and parsed.request.cfg_scale == 1.0
    assert "distilled_cfg" in parsed.given and not parsed.notices
    assert parsed.unknown == {"Model hash": "7d3a8dd4e1", "Module 1": "ae"}
    assert parse("Steps: 20, CFG scale: 1, Distilled CFG Scale: 30, Seed: 7").request.distilled_cfg == 30.0
    assert parse("Steps: 20, CFG scale: 1, Seed: 7").request.distilled_cfg == 3.5  # not Flux: the default kept


def test_comfyui_image_saver_json_values_stay_whole():
    # ComfyUI-Image-Saver writes Hashes and Civitai resources as unquoted JSON after the key.
    line = ('Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.0, Seed: 42, Size: 512x512, Clip skip: 2, '
            'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Hashes: {"model":"6ce0161689","lora:foo":"ab12"}, '
            'Version: ComfyUI, Civitai resources: [{"modelVersionId":123},{"air":"urn:air:sd1:lora:civitai:1@2",'
            '"weight":0.8}]')
    parsed = parse(line)
    r = parsed.request
    assert (r.sampler, r.spacing, r.cfg_scale, r.seed, r.clip_skip) == ("dpmpp_2m", "karras", 7.0, 42, 2)
    assert parsed.unknown["Hashes"] == '{"model":"6ce0161689","lora:foo":"ab12"}'
    assert parsed.unknown["Civitai resources"].endswith('"weight":0.8}]')
    assert set(parsed.unknown) == {"Model hash", "Hashes", "Version", "Civitai resources"}


def test_comfyui_negative_clip_skip_is_a1111s_positive_one():
    assert parse("Steps: 20, Sampler: euler, CFG scale: 7, Seed: 1, Size: 64x64, Clip skip: -2").request.clip_skip == 2


def test_seeds_beyond_the_studios_range_wrap_with_a_notice():
    # ComfyUI seeds run to 2**64 - 1; the studio's to 2**63 - 1.
    parsed = parse("Steps: 20, Sampler: euler, CFG scale: 7, Seed: 18446744073709551615, Size: 64x64")
    assert parsed.request.seed == (2**64 - 1) % 2**63
    assert any("Seed" in n for n in parsed.notices)
