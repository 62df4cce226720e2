"""LoRA files in every common format, merged into tiny random Stable Diffusion models and taken out exactly.

The LoRA files are written here from random tensors, keyed the way each writer keys them
(kohya / AUTOMATIC1111, diffusers / PEFT, LyCORIS LoHa and LoKr). Parity: diffusers'
``load_lora_weights`` + ``fuse_lora`` on the same networks gives the same merged weights.
"""

from __future__ import annotations

import copy
import hashlib
import struct

import numpy as np
import pytest

pytest.importorskip("diffusers")
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from studio.engine.models.sd.adapter_files import AdapterLibrary, AdapterNotFound  # noqa: E402
from studio.engine.models.sd.detect import Detection  # noqa: E402
from studio.engine.models.sd.load import _tokenizers, assemble  # noqa: E402
from studio.engine.models.sd.lora import LoraUse  # noqa: E402
from studio.engine.models.sd.model import Networks  # noqa: E402
from studio.engine.models.sd.original_layout import unet_to_original  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs  # noqa: E402
from studio.engine.request import GenerationRequest, RequestError  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

SIZE = 64
SEEDS = {"sd1": 0, "sdxl": 2}


def _model(family: str, folder, built=None, dtype=torch.float32):
    built = built or build_random(family, seed=SEEDS[family])
    tokenizers = _tokenizers(save_configs(built, folder), family)
    nets = Networks(built.unet, built.vae, built.text_encoders, tokenizers)
    return assemble(f"tiny {family}", Detection(family, None), nets, built.scheduler_config, {}, torch.device("cpu"),
                    dtype)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> (model, a pristine copy of its random networks)."""
    out = {}
    for family in SEEDS:
        built = build_random(family, seed=SEEDS[family])
        pristine = copy.deepcopy(built)
        out[family] = (_model(family, tmp_path_factory.mktemp(family), built), pristine)
    return out


@pytest.fixture()
def lora_dir(tmp_path):
    """A folder named as AUTOMATIC1111 names it, which the runner's AdapterLibrary lists."""
    folder = tmp_path / "Lora"
    folder.mkdir()
    return folder


@pytest.fixture()
def sd1(tiny):
    model = tiny["sd1"][0]
    yield model
    model.loras.restore()


@pytest.fixture()
def sdxl(tiny):
    model = tiny["sdxl"][0]
    yield model
    model.loras.restore()


def request(prompt="a red apple <lora:style:0.8>", **kw) -> GenerationRequest:
    base = dict(prompt=prompt, negative_prompt="blurry", sampler="euler", steps=3, cfg_scale=5.0, seed=7,
                width=SIZE, height=SIZE)
    return GenerationRequest(**{**base, **kw})


def runner(model, folder) -> Runner:
    return Runner(model, adapters=AdapterLibrary((folder,), include_defaults=False))


# -- writing LoRA files the way each tool writes them -------------------------------------------------------------

def _adapted(net, kinds=(torch.nn.Linear, torch.nn.Conv2d)):
    """Module names a LoRA trainer adapts: attention, feed-forward, projections and (LoCon) convolutions."""
    names = []
    for name, module in net.named_modules():
        if isinstance(module, kinds) and not name.endswith(("token_embedding", "position_embedding")):
            if any(p in name for p in ("attn", "ff.net", "proj_", "mlp", "resnets.0.conv1", "self_attn")):
                names.append((name, module))
    return names


def _pair(module, rank, gen):
    w = module.weight
    if w.ndim == 4:  # LoCon: a k x k down convolution, a 1 x 1 up
        return (torch.randn(rank, w.shape[1], *w.shape[2:], generator=gen) * 0.1,
                torch.randn(w.shape[0], rank, 1, 1, generator=gen) * 0.1)
    return torch.randn(rank, w.shape[1], generator=gen) * 0.1, torch.randn(w.shape[0], rank, generator=gen) * 0.1


def _clip_name(name):
    return name if name.startswith("text_model.") else "text_model." + name


def kohya_lora(model, rank=4, alpha=2.0, seed=0, original_layout=False, text=True):
    """A kohya-ss / AUTOMATIC1111 file: lora_unet_* (diffusers or original names), lora_te*_*."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    originals = {}
    if original_layout:
        mods = [n for n, _ in _adapted(model.unet)]
        mapped = unet_to_original({f"{n}.weight": n for n in mods}, model.unet.config)
        originals = {v: k[len("model.diffusion_model."):-len(".weight")] for k, v in mapped.items()}
    for name, module in _adapted(model.unet):
        key = "lora_unet_" + originals.get(name, name).replace(".", "_")
        out[f"{key}.lora_down.weight"], out[f"{key}.lora_up.weight"] = _pair(module, rank, gen)
        out[f"{key}.alpha"] = torch.tensor(alpha)
    encoders = model.prompts.encoders if text else []
    prefixes = ["lora_te"] if len(encoders) == 1 else ["lora_te1", "lora_te2"]
    for prefix, encoder in zip(prefixes, encoders, strict=False):
        for name, module in _adapted(encoder):
            key = f"{prefix}_" + _clip_name(name).replace(".", "_")
            out[f"{key}.lora_down.weight"], out[f"{key}.lora_up.weight"] = _pair(module, rank, gen)
            out[f"{key}.alpha"] = torch.tensor(alpha)
    return out


def peft_lora(model, rank=4, seed=1):
    """A diffusers / PEFT file: unet.<module>.lora_A.weight / lora_B.weight, text_encoder.<module>...."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, module in _adapted(model.unet, kinds=(torch.nn.Linear,)):
        down, up = _pair(module, rank, gen)
        out[f"unet.{name}.lora_A.weight"], out[f"unet.{name}.lora_B.weight"] = down, up
    for name, module in _adapted(model.prompts.encoders[0], kinds=(torch.nn.Linear,)):
        down, up = _pair(module, rank, gen)
        out[f"text_encoder.{_clip_name(name)}.lora_A.weight"] = down
        out[f"text_encoder.{_clip_name(name)}.lora_B.weight"] = up
    return out


def save(tensors, folder, name, metadata=None):
    path = folder / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def params(*nets):
    return {f"{i}:{k}": v.detach().clone() for i, net in enumerate(nets) for k, v in net.state_dict().items()}


def _changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


# -- kohya, PEFT and the older diffusers layout ------------------------------------------------------------------

def test_kohya_sd1_lora_with_locon_convolutions_merges_as_up_at_down_times_alpha_over_rank(sd1, lora_dir):
    tensors = kohya_lora(sd1, rank=4, alpha=2.0)
    save(tensors, lora_dir, "style.safetensors")
    before = params(sd1.unet, *sd1.prompts.encoders)
    runner(sd1, lora_dir).run(request("an apple <lora:style:0.8>"))
    conv = "down_blocks.0.resnets.0.conv1"
    key = "lora_unet_" + conv.replace(".", "_")
    up, down = tensors[f"{key}.lora_up.weight"], tensors[f"{key}.lora_down.weight"]
    expected = before[f"0:{conv}.weight"] + 0.8 * 0.5 * (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], -1, 3, 3)
    got = sd1.unet.get_submodule(conv).weight
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    q = "text_model.encoder.layers.0.self_attn.q_proj"
    key = "lora_te_" + q.replace(".", "_")
    te_q = sd1.prompts.encoders[0].get_submodule(q.removeprefix("text_model."))
    expected = before[f"1:{q.removeprefix('text_model.')}.weight"] + 0.8 * 0.5 * (
        tensors[f"{key}.lora_up.weight"] @ tensors[f"{key}.lora_down.weight"])
    torch.testing.assert_close(te_q.weight, expected, rtol=0, atol=1e-6)
    changed = _changed(before, params(sd1.unet, *sd1.prompts.encoders))
    assert len(changed) == len([k for k in tensors if k.endswith(".alpha")])  # every layer landed, nothing else


def test_kohya_sdxl_lora_in_the_original_layout_reaches_both_text_encoders(sdxl, lora_dir):
    tensors = kohya_lora(sdxl, original_layout=True)
    # Spot-check the names against the layout sd-scripts writes for SDXL (input_blocks, not down_blocks).
    assert "lora_unet_input_blocks_3_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in tensors
    assert any(k.startswith("lora_te2_text_model_encoder_layers_0_self_attn_q_proj") for k in tensors)
    save(tensors, lora_dir, "xl-style.safetensors")
    before = params(sdxl.unet, *sdxl.prompts.encoders)
    runner(sdxl, lora_dir).run(request("an apple <lora:xl-style:1:0.5>", negative_prompt=""))
    changed = _changed(before, params(sdxl.unet, *sdxl.prompts.encoders))
    assert len(changed) == len([k for k in tensors if k.endswith(".alpha")])
    assert {k.split(":")[0] for k in changed} == {"0", "1", "2"}  # UNet and both encoders
    name = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    key = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn1_to_q"
    delta = tensors[f"{key}.lora_up.weight"] @ tensors[f"{key}.lora_down.weight"] * 0.5 * (2.0 / 4)
    torch.testing.assert_close(sdxl.unet.get_submodule(name).weight, before[f"0:{name}.weight"] + delta,
                               rtol=0, atol=1e-6)


def test_the_older_diffusers_processor_layout_is_read(sd1, lora_dir):
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn2"
    gen = torch.Generator().manual_seed(3)
    out_w = sd1.unet.get_submodule(f"{name}.to_out.0").weight
    tensors = {f"unet.{name}.processor.to_out_lora.down.weight": torch.randn(2, out_w.shape[1], generator=gen),
               f"unet.{name}.processor.to_out_lora.up.weight": torch.randn(out_w.shape[0], 2, generator=gen)}
    save(tensors, lora_dir, "old.safetensors")
    before = out_w.detach().clone()
    runner(sd1, lora_dir).run(request("x <lora:old>"))
    delta = tensors[f"unet.{name}.processor.to_out_lora.up.weight"] @ tensors[
        f"unet.{name}.processor.to_out_lora.down.weight"]
    torch.testing.assert_close(out_w, before + delta, rtol=0, atol=1e-5)


def _diffusers_fused(pristine, family, tokenizers, tensors, path, scale=1.0):
    """diffusers' own merge of the same file into a copy of the same random networks."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from studio.engine.models.sd.load import require_sd_libraries

    require_sd_libraries()
    built = copy.deepcopy(pristine)
    if family == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=built.vae, text_encoder=built.text_encoders[0],
                                         text_encoder_2=built.text_encoders[1], tokenizer=tokenizers[0],
                                         tokenizer_2=tokenizers[1], unet=built.unet, scheduler=None)
    else:
        pipe = StableDiffusionPipeline(vae=built.vae, text_encoder=built.text_encoders[0], tokenizer=tokenizers[0],
                                       unet=built.unet, scheduler=None, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name="x")
    pipe.fuse_lora(lora_scale=scale)
    pipe.unload_lora_weights()
    return built


@pytest.mark.parametrize("fmt", ["kohya", "peft"])
def test_parity_with_diffusers_load_lora_weights_and_fuse_lora(tiny, sd1, lora_dir, fmt):
    pristine = tiny["sd1"][1]
    tensors = kohya_lora(sd1, rank=4, alpha=3.0) if fmt == "kohya" else peft_lora(sd1, rank=4)
    path = save(tensors, lora_dir, f"{fmt}.safetensors")
    fused = _diffusers_fused(pristine, "sd1", sd1.prompts.tokenizers, tensors, path)
    req = request(f"an apple <lora:{fmt}:1>")
    result = runner(sd1, lora_dir).run(req)
    ours, theirs = params(sd1.unet, *sd1.prompts.encoders), params(fused.unet, *fused.text_encoders)
    base = params(tiny["sd1"][1].unet, *tiny["sd1"][1].text_encoders)
    diff = max((ours[k] - theirs[k]).abs().max().item() for k in theirs)
    moved = len(_changed(base, theirs))
    print(f"{fmt}: max |studio - diffusers fuse_lora| over all weights = {diff:.2e} ({moved} weights changed)")
    assert moved == len(_changed(base, ours)) > 10
    assert diff < 1e-5
    # The studio's run with the LoRA equals a run of the weights diffusers fused, without any LoRA.
    reference = Runner(_model("sd1", lora_dir / "ref", fused)).run(req.with_changes(prompt="an apple "))
    assert np.abs(result.latent - reference.latent).max() < 1e-4
    assert np.abs(result.image.astype(int) - reference.image).max() <= 1


def test_sdxl_parity_with_diffusers_for_a_kohya_lora_in_the_original_layout(tiny, sdxl, lora_dir):
    pristine = tiny["sdxl"][1]
    tensors = kohya_lora(sdxl, rank=4, alpha=2.0, original_layout=True)
    path = save(tensors, lora_dir, "xl.safetensors")
    fused = _diffusers_fused(pristine, "sdxl", sdxl.prompts.tokenizers, tensors, path)
    sdxl.loras.activate([LoraUse(path, "xl")])
    ours, theirs = params(sdxl.unet, *sdxl.prompts.encoders), params(fused.unet, *fused.text_encoders)
    base = params(pristine.unet, *pristine.text_encoders)
    diff = max((ours[k] - theirs[k]).abs().max().item() for k in theirs)
    print(f"sdxl kohya: max |studio - diffusers fuse_lora| = {diff:.2e}")
    assert _changed(base, theirs) == _changed(base, ours) and diff < 1e-5


# -- LyCORIS ---------------------------------------------------------------------------------------------------

def test_loha_and_lokr_merge_as_their_formulas(sd1, lora_dir):
    gen = torch.Generator().manual_seed(5)
    lin = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k"
    conv = "down_blocks.0.resnets.0.conv1"
    w_lin, w_conv = sd1.unet.get_submodule(lin).weight, sd1.unet.get_submodule(conv).weight
    out, inp = w_lin.shape
    r = 3
    loha = {f"lora_unet_{lin.replace('.', '_')}.{k}": v for k, v in {
        "hada_w1_a": torch.randn(out, r, generator=gen), "hada_w1_b": torch.randn(r, inp, generator=gen),
        "hada_w2_a": torch.randn(out, r, generator=gen), "hada_w2_b": torch.randn(r, inp, generator=gen),
        "alpha": torch.tensor(1.5)}.items()}
    co, ci, kh, kw = w_conv.shape
    w1 = torch.randn(2, 2, generator=gen)
    w2 = torch.randn(co // 2, ci // 2, kh, kw, generator=gen)
    lokr = {f"lora_unet_{conv.replace('.', '_')}.lokr_w1": w1, f"lora_unet_{conv.replace('.', '_')}.lokr_w2": w2}
    save(loha, lora_dir, "hada.safetensors")
    save(lokr, lora_dir, "kron.safetensors")
    before_lin, before_conv = w_lin.detach().clone(), w_conv.detach().clone()
    runner(sd1, lora_dir).run(request("x <lora:hada:0.5> <lora:kron:2>"))
    p = {k.rsplit(".", 1)[1]: v for k, v in loha.items()}
    hada = (p["hada_w1_a"] @ p["hada_w1_b"]) * (p["hada_w2_a"] @ p["hada_w2_b"]) * (1.5 / r)
    torch.testing.assert_close(w_lin, before_lin + 0.5 * hada, rtol=1e-6, atol=1e-5)
    # Kronecker product by its definition: block (i, j) of the result is w1[i, j] * w2.
    kron = torch.zeros_like(before_conv)
    for i in range(2):
        for j in range(2):
            kron[i * (co // 2):(i + 1) * (co // 2), j * (ci // 2):(j + 1) * (ci // 2)] = w1[i, j] * w2
    torch.testing.assert_close(w_conv, before_conv + 2 * kron, rtol=1e-6, atol=1e-5)


def test_unsupported_lycoris_kinds_are_refused_by_name(sd1, lora_dir):
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k"
    save({f"{name}.oft_blocks": torch.zeros(4, 8, 8)}, lora_dir, "oft.safetensors")
    with pytest.raises(RequestError, match=r"oft\.safetensors is a OFT"):
        runner(sd1, lora_dir).run(request("x <lora:oft>"))


# -- exact removal ------------------------------------------------------------------------------------------------

def test_100_apply_remove_cycles_leave_every_weight_bit_identical_to_a_fresh_model(tiny, sd1, lora_dir):
    a = save(kohya_lora(sd1, seed=1), lora_dir, "a.safetensors")
    b = save(peft_lora(sd1, seed=2), lora_dir, "b.safetensors")
    sets = [[LoraUse(a, "a", 0.7, 0.7)], [], [LoraUse(a, "a", 1.3, 0.2), LoraUse(b, "b", 0.5, 0.5)],
            [LoraUse(b, "b", -1.0, -1.0)]]
    for i in range(100):
        sd1.loras.activate(sets[i % len(sets)])
    sd1.loras.activate([])
    fresh = tiny["sd1"][1]
    ours, theirs = params(sd1.unet, *sd1.prompts.encoders), params(fresh.unet, *fresh.text_encoders)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_half_precision_weights_are_merged_in_float32_rounded_once_and_restored_exactly(tiny, lora_dir):
    half = _model("sd1", lora_dir / "cfg", copy.deepcopy(tiny["sd1"][1]), dtype=torch.bfloat16)
    a = save(kohya_lora(half, seed=1), lora_dir, "a.safetensors")
    b = save(kohya_lora(half, seed=2), lora_dir, "b.safetensors")
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    weight = half.unet.get_submodule(name).weight
    before = weight.detach().clone()
    half.loras.activate([LoraUse(a, "a", 1.0, 0.5), LoraUse(b, "b", 1.0, -2.0)])
    key = "lora_unet_" + name.replace(".", "_")
    ta, tb = (kohya_lora(half, seed=s) for s in (1, 2))  # the same random tensors again
    # alpha / rank = 0.5 and weights 0.5, -2: powers of two, so the order of the products cannot matter.
    delta = sum(m * 0.5 * (t[f"{key}.lora_up.weight"] @ t[f"{key}.lora_down.weight"])
                for m, t in ((0.5, ta), (-2.0, tb)))
    assert weight.dtype == torch.bfloat16
    assert torch.equal(weight, (before.float() + delta).to(torch.bfloat16))
    half.loras.activate([])
    assert torch.equal(weight, before)


def test_the_same_set_is_not_merged_again_and_a_prompt_without_tags_removes_it(sd1, lora_dir, monkeypatch):
    save(kohya_lora(sd1), lora_dir, "style.safetensors")
    run = runner(sd1, lora_dir)
    run.run(request("x <lora:style:0.8>"))
    merged = params(sd1.unet)
    from studio.engine.models.sd import lora as lora_module

    calls = []
    monkeypatch.setattr(lora_module, "layer_delta", lambda *a: calls.append(a))
    run.run(request("another prompt <lora:STYLE:0.8>", seed=3))  # same file and weight: no merge
    assert not calls and not _changed(merged, params(sd1.unet))
    monkeypatch.undo()
    run.run(request("no tags"))
    assert not sd1.loras.active and _changed(merged, params(sd1.unet))


# -- the prompt the encoder reads, and the parameters -------------------------------------------------------------

def test_tags_never_reach_the_text_encoder_also_inside_prompt_editing(sd1, lora_dir, monkeypatch):
    save(kohya_lora(sd1), lora_dir, "style.safetensors")
    seen = []
    original = sd1.encode_prompt
    monkeypatch.setattr(sd1, "encode_prompt", lambda p, n, *a, **k: (seen.append((p, n)), original(p, n, *a, **k))[1])
    run = runner(sd1, lora_dir)
    result = run.run(request("[a cat <lora:style:0.5>:a dog:0.5], oil", negative_prompt="blur <lora:style:0.5>",
                             steps=4))
    assert seen == [("a cat , oil", "blur"), ("a dog, oil", "blur")]
    # The two tags of one name add up, as in AUTOMATIC1111; the hash names the LoRA as the prompt wrote it.
    assert result.infotext == (("Lora hashes", f"style: {_addnet(lora_dir / 'style.safetensors')}"),)
    assert result.request.prompt.startswith("[a cat <lora:style:0.5>")  # the request keeps what the user wrote


def _addnet(path):
    """The kohya / additional-networks hash, written out from its definition: SHA-256 after the header."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + n:]).hexdigest()[:12]


def test_lora_hashes_as_automatic1111_writes_them(sd1, lora_dir):
    from studio.engine.models.sd.lora_hash import lora_hashes_value, short_lora_hash

    a = save(kohya_lora(sd1), lora_dir, "a.safetensors")
    stored = "ab" * 32
    b = save(kohya_lora(sd1, seed=4), lora_dir, "b.safetensors", metadata={"sshs_model_hash": stored})
    pt = lora_dir / "c.pt"
    torch.save({"x.lora_down.weight": torch.zeros(1)}, pt)
    assert short_lora_hash(a) == _addnet(a)
    assert short_lora_hash(b) == stored[:12]  # the trainer's stored hash wins, as in AUTOMATIC1111
    assert short_lora_hash(pt) == hashlib.sha256(pt.read_bytes()).hexdigest()[:12]
    assert lora_hashes_value([("my:lo,ra", a), ("b", b)]) == f"mylora: {_addnet(a)}, b: {stored[:12]}"


def test_parameters_text_writes_and_reads_back_lora_hashes(sd1, lora_dir):
    from studio.io.parameters import format_parameters, parse_parameters

    save(kohya_lora(sd1), lora_dir, "style.safetensors")
    req = request("an apple <lora:style:0.8>")
    result = runner(sd1, lora_dir).run(req)
    text = format_parameters(req, "tiny", result.infotext)
    assert f'Lora hashes: "style: {_addnet(lora_dir / "style.safetensors")}"' in text.splitlines()[-1]
    parsed = parse_parameters(text)
    assert parsed.request.prompt == "an apple <lora:style:0.8>"
    assert parsed.unknown["Lora hashes"] == f"style: {_addnet(lora_dir / 'style.safetensors')}"
    assert not parsed.adapted
    assert format_parameters(parsed.request, "tiny", result.infotext) == text


# -- files and requests that must be refused, leaving the model working -------------------------------------------

def test_unknown_names_are_refused_with_the_closest_names(sd1, lora_dir):
    save(kohya_lora(sd1), lora_dir, "watercolor-style.safetensors")
    with pytest.raises(AdapterNotFound, match=r"no LoRA named 'watercolour-style'.*closest: watercolor-style"):
        runner(sd1, lora_dir).run(request("x <lora:watercolour-style:1>"))


def test_damaged_and_malicious_files_get_clear_errors_and_the_model_still_generates(sd1, lora_dir):
    good = save(kohya_lora(sd1), lora_dir, "good.safetensors")
    data = good.read_bytes()
    (lora_dir / "cut.safetensors").write_bytes(data[: len(data) // 2])
    (lora_dir / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    marker = lora_dir / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"lora_unet_x.lora_down.weight": torch.zeros(1), "evil": Payload()}, lora_dir / "evil.pt")
    torch.save({"x": torch.zeros(2)}, lora_dir / "plain.pt")
    (lora_dir / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    run = runner(sd1, lora_dir)
    run.run(request("x <lora:good:1>"))
    merged = params(sd1.unet)
    expected = {"cut": r"LoRA file cut\.safetensors: cut\.safetensors is truncated",
                "junk": r"junk\.safetensors has a corrupt safetensors header",
                "evil": r"evil\.pt was refused: it asks to run",
                "plain": r"plain\.pt holds no LoRA layers",
                "broken": r"broken\.ckpt could not be read"}
    for name, message in expected.items():
        with pytest.raises(RequestError, match=message):
            run.run(request(f"x <lora:{name}:1>"))
        assert not _changed(merged, params(sd1.unet)), name  # untouched
    assert not marker.exists()
    run.run(request("x"))  # and it still generates, without any LoRA
    assert not sd1.loras.active


def test_a_lora_for_another_family_or_another_model_is_refused_naming_the_file(tiny, sd1, sdxl, lora_dir):
    save(kohya_lora(sdxl, original_layout=True), lora_dir, "xl-only.safetensors")
    with pytest.raises(RequestError, match=r"LoRA xl-only\.safetensors is for SDXL models and tiny sd1 is SD 1\.x"):
        runner(sd1, lora_dir).run(request("x <lora:xl-only>"))
    save({"lora_unet_nowhere_to_q.lora_down.weight": torch.zeros(2, 4),
          "lora_unet_nowhere_to_q.lora_up.weight": torch.zeros(4, 2)}, lora_dir, "other.safetensors")
    with pytest.raises(RequestError, match=r"LoRA other\.safetensors: none of its 1 layers match"):
        runner(sd1, lora_dir).run(request("x <lora:other>"))
    # Same names, other shapes (an SD 1.x LoRA for a wider model): refused, and the weights are the originals.
    wide = {k: torch.cat([v, v], dim=-1) if k.endswith("lora_down.weight") and v.ndim == 2 else v
            for k, v in kohya_lora(sd1).items()}
    save(wide, lora_dir, "wide.safetensors")
    with pytest.raises(RequestError, match=r"LoRA wide\.safetensors does not fit tiny sd1"):
        runner(sd1, lora_dir).run(request("x <lora:wide>"))
    fresh = tiny["sd1"][1]
    assert all(torch.equal(a, b) for a, b in zip(sd1.unet.state_dict().values(), fresh.unet.state_dict().values(),
                                                 strict=True))


def test_factors_that_do_not_fit_together_are_refused_and_a_whole_number_alpha_is_read(sd1, lora_dir):
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    weight = sd1.unet.get_submodule("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q").weight
    before = weight.detach().clone()
    save({f"{key}.lora_down.weight": torch.ones(2, weight.shape[1]), f"{key}.lora_up.weight": torch.ones(7)},
         lora_dir, "flat.safetensors")
    with pytest.raises(RequestError, match=r"flat\.safetensors does not fit .*do not fit together"):
        runner(sd1, lora_dir).run(request("x <lora:flat>"))
    assert torch.equal(weight, before)
    down, up = torch.ones(2, weight.shape[1]) * 0.01, torch.ones(weight.shape[0], 2)
    save({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(1)},
         lora_dir, "int-alpha.safetensors")
    sd1.loras.activate([LoraUse(lora_dir / "int-alpha.safetensors", "int-alpha")])
    torch.testing.assert_close(weight, before + up @ down * 0.5, rtol=0, atol=1e-6)


def test_a_partly_matching_lora_is_applied_and_the_rest_reported(sd1, lora_dir):
    tensors = kohya_lora(sd1)
    tensors["lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight"] = torch.zeros(4, 8)
    tensors["lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight"] = torch.zeros(8, 4)
    save(tensors, lora_dir, "partial.safetensors")
    run = runner(sd1, lora_dir)
    run.run(request("x <lora:partial>"))
    assert sd1.loras.active
    assert len(run.notices) == 1 and "partial.safetensors: 1 of its" in run.notices[0]
    assert "down_blocks_9" in run.notices[0]


def test_models_without_lora_support_refuse_a_tag_and_keep_other_text(lora_dir):
    from studio.engine.models.toy import ToyShapesModel

    run = Runner(ToyShapesModel())
    with pytest.raises(RequestError, match=r"cannot use LoRAs \(<lora:style:1> in the prompt"):
        run.run(GenerationRequest(prompt="a circle <lora:style:1> <hypernet:x>", steps=2, width=32, height=32))
    assert run.run(GenerationRequest(prompt="a circle <3:", steps=2, width=32, height=32)).image.shape[0] == 32
