"""Textual-inversion embeddings from an AUTOMATIC1111 layout, used by name in the prompt, on tiny random models."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from studio.engine.models.sd.adapter_files import AdapterLibrary  # noqa: E402
from studio.engine.models.sd.embeddings import EmbeddingError, read_embedding  # noqa: E402
from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_diffusers  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

SIZE = 64
WIDTH = 32  # the tiny text encoders' width (both of SDXL's)


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    """An A1111 folder: two tiny checkpoints (diffusers folders) and an embeddings folder in every format."""
    root = tmp_path_factory.mktemp("emb") / "stable-diffusion-webui"
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    emb = root / "embeddings"
    (emb / "sdxl").mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    vectors = {name: torch.randn(n, WIDTH, generator=gen) for name, n in [("shiny", 3), ("rusty", 1), ("blurred", 2)]}
    save_file({"emb_params": vectors["shiny"]}, str(emb / "shiny.safetensors"))
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors["rusty"]}, "name": "rusty",
                "step": 500, "sd_checkpoint": None, "sd_checkpoint_name": None}, emb / "rusty.pt")
    torch.save({"<blurred>": vectors["blurred"]}, emb / "blurred.bin")
    xl = {"clip_l": torch.randn(2, WIDTH, generator=gen), "clip_g": torch.randn(2, WIDTH, generator=gen)}
    save_file(xl, str(emb / "sdxl" / "glossy.safetensors"))
    (emb / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    models = {}
    for family in ("sd1", "sdxl"):
        models[family] = save_diffusers(build_random(family, seed=3), root / "models" / "Stable-diffusion" / family)
    return root, models, {**vectors, "glossy": xl}


@pytest.fixture(scope="module")
def sd1(webui):
    root, models, _ = webui
    return load_sd_model(models["sd1"])


@pytest.fixture(scope="module")
def sdxl(webui):
    root, models, _ = webui
    return load_sd_model(models["sdxl"])


def files_of(webui, family="sd1"):
    _, models, _ = webui
    return AdapterLibrary(checkpoint=models[family], include_defaults=False).list("embedding")


def with_vectors_as_new_tokens(encoder, rows, inserts):
    """A copy of ``encoder`` whose vocabulary ends with ``inserts`` ([k, D]), and ``rows`` (77 ids each, the
    embedding's placeholders at ``positions``) with those new ids: the embedding put in as a new word would be."""
    ref = copy.deepcopy(encoder)
    text = getattr(ref, "text_model", ref)
    old = text.embeddings.token_embedding.weight.detach()
    text.embeddings.token_embedding = torch.nn.Embedding.from_pretrained(torch.cat([old, inserts]))
    return ref, old.shape[0]


def encode_by_hand(encoder, ids: list[int], positions: list[int], vectors: torch.Tensor, layer: int | None = None):
    ref, first_new = with_vectors_as_new_tokens(encoder, [ids], vectors)
    ids = list(ids)
    for i, p in enumerate(positions):
        ids[p] = first_new + i
    with torch.no_grad():
        out = ref(torch.tensor([ids]), output_hidden_states=True)
    return (out.last_hidden_state if layer is None else out.hidden_states[layer]).float()


def test_each_file_layout_reads_its_vectors(webui):
    root, _, vectors = webui
    emb = root / "embeddings"
    assert torch.equal(read_embedding(emb / "shiny.safetensors").parts[""], vectors["shiny"])
    rusty = read_embedding(emb / "rusty.pt")
    assert torch.equal(rusty.parts[""], vectors["rusty"]) and rusty.count == 1
    assert torch.equal(read_embedding(emb / "blurred.bin").parts[""], vectors["blurred"])
    glossy = read_embedding(emb / "sdxl" / "glossy.safetensors")
    assert set(glossy.parts) == {"clip_l", "clip_g"} and glossy.count == 2
    assert glossy.sha256 == hashlib.sha256((emb / "sdxl" / "glossy.safetensors").read_bytes()).hexdigest()
    single = root / "one-vector.bin"
    torch.save({"<one>": torch.ones(WIDTH)}, single)  # diffusers saves a one-token embedding as [dim]
    assert read_embedding(single).parts[""].shape == (1, WIDTH)


def test_the_embeddings_vectors_replace_its_name_in_the_token_stream(webui, sd1):
    _, _, vectors = webui
    enc = sd1.prompts
    plain, _ = sd1.encode_prompt("a shiny apple", "", SIZE, SIZE)
    enc.use_embeddings(files_of(webui))
    cond, _ = sd1.encode_prompt("a shiny apple", "", SIZE, SIZE)
    [(ids, weights, fixes)] = enc.token_rows("a shiny apple", enc.tokenizers[0])
    tok = enc.tokenizers[0]
    a, apple = tok("a", add_special_tokens=False).input_ids[0], tok("apple", add_special_tokens=False).input_ids[0]
    assert ids[:7] == [tok.bos_token_id, a, 0, 0, 0, apple, tok.eos_token_id]  # 3 vectors: 3 positions
    assert [(p, e.name) for p, e in fixes] == [(2, "shiny")]
    expected = encode_by_hand(enc.encoders[0], ids, [2, 3, 4], vectors["shiny"])
    assert torch.allclose(cond["context"], expected, atol=1e-6)
    assert not torch.allclose(cond["context"], plain["context"])
    # The name matches as A1111 matches it, by its tokens: CLIP lowercases, so case does not matter.
    upper, _ = sd1.encode_prompt("a SHINY apple", "", SIZE, SIZE)
    assert torch.equal(upper["context"], cond["context"])
    # Emphasis weighs the embedding's positions like any word's.
    [(_, weights, _)] = enc.token_rows("a (shiny:1.5) apple", tok)
    assert weights[1:6] == [1.0, 1.5, 1.5, 1.5, 1.0]


def test_a_word_that_names_no_embedding_is_just_a_word_and_plain_prompts_are_unchanged(webui, sd1):
    enc = sd1.prompts
    enc.use_embeddings(())
    before, before_neg = sd1.encode_prompt("a glittering (apple:1.2), " * 12, "blur", SIZE, SIZE)
    enc.use_embeddings(files_of(webui))  # a broken file among them: never read, as no prompt names it
    after, after_neg = sd1.encode_prompt("a glittering (apple:1.2), " * 12, "blur", SIZE, SIZE)
    assert torch.equal(before["context"], after["context"]) and torch.equal(before_neg["context"], after_neg["context"])
    assert enc.used_embeddings == {} and sd1.prompt_infotext() == ()


def test_an_embedding_counts_its_vectors_for_chunking_and_is_never_split(webui, sd1):
    enc, tok = sd1.prompts, sd1.prompts.tokenizers[0]
    enc.use_embeddings(files_of(webui))
    rows = enc.token_rows("a " * 72 + "shiny", tok)  # 72 + 3 = 75: one full chunk
    assert len(rows) == 1 and [p for p, _ in rows[0][2]] == [73] and rows[0][0][76] == tok.eos_token_id
    rows = enc.token_rows("a " * 73 + "shiny", tok)  # 73 + 3 > 75: the embedding moves whole to chunk two
    assert len(rows) == 2 and rows[0][2] == [] and [p for p, _ in rows[1][2]] == [1]
    assert rows[0][0][73] == tok("a", add_special_tokens=False).input_ids[0] and rows[0][0][74] == tok.eos_token_id
    cond, uncond = sd1.encode_prompt("a " * 73 + "shiny", "", SIZE, SIZE)
    assert cond["context"].shape[1] == 154 and uncond["context"].shape == cond["context"].shape
    # A chunk cut at a comma takes the embedding after the comma along, whole.
    rows = enc.token_rows("a " * 60 + ", " + "a " * 11 + "shiny apple", tok)
    assert len(rows) == 2 and rows[0][2] == [] and [p for p, _ in rows[1][2]] == [12]


def test_sdxl_reads_clip_l_in_the_first_encoder_and_clip_g_in_the_second(webui, sdxl):
    _, _, vectors = webui
    enc = sdxl.prompts
    plain, _ = sdxl.encode_prompt("a glossy car", "", SIZE, SIZE)
    enc.use_embeddings(files_of(webui, "sdxl"))
    cond, _ = sdxl.encode_prompt("a glossy car", "", SIZE, SIZE)
    [(ids, _, fixes)] = enc.token_rows("a glossy car", enc.tokenizers[1])
    assert [p for p, _ in fixes] == [2]
    halves = []
    for encoder, tokenizer, part in zip(enc.encoders, enc.tokenizers, ("clip_l", "clip_g"), strict=True):
        [(ids, _, _)] = enc.token_rows("a glossy car", tokenizer)
        halves.append(encode_by_hand(encoder, ids, [2, 3], vectors["glossy"][part], layer=-2))
    assert torch.allclose(cond["context"], torch.cat(halves, dim=-1), atol=1e-6)
    assert not torch.allclose(cond["pooled"], plain["pooled"])  # the second encoder's pooled state sees it too
    assert sdxl.prompt_infotext()[0][1].startswith('"glossy: ')


def test_wrong_width_and_wrong_family_embeddings_name_the_file_and_both_widths(webui, sd1, sdxl, tmp_path):
    root, _, _ = webui
    folder = tmp_path / "webui" / "embeddings"
    folder.mkdir(parents=True)
    save_file({"emb_params": torch.zeros(2, 48)}, str(folder / "wide.safetensors"))  # as an SD 2 file on SD 1.5
    from studio.engine.models.sd.adapter_files import AdapterFile

    wide = AdapterFile("embedding", "wide", folder / "wide.safetensors")
    sd1.prompts.use_embeddings([wide])
    with pytest.raises(EmbeddingError, match=r"'wide' \(wide\.safetensors\) has vectors of width 48.*takes 32"):
        sd1.encode_prompt("a wide apple", "", SIZE, SIZE)
    sdxl.prompts.use_embeddings(files_of(webui, "sd1"))
    with pytest.raises(EmbeddingError, match=r"shiny.*width 32, .*take clip_l 32 \+ clip_g 32"):
        sdxl.encode_prompt("a shiny apple", "", SIZE, SIZE)
    sd1.prompts.use_embeddings(files_of(webui, "sdxl"))
    with pytest.raises(EmbeddingError, match=r"glossy.*width clip_l 32 \+ clip_g 32"):
        sd1.encode_prompt("a glossy apple", "", SIZE, SIZE)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_corrupt_truncated_and_pickled_code_files_are_refused_by_name_and_the_model_keeps_working(
        webui, sd1, tmp_path):
    from studio.engine.models.sd.adapter_files import list_adapters

    folder = tmp_path / "embeddings"
    folder.mkdir()
    good = torch.randn(2, WIDTH)
    torch.save({"string_to_param": {"*": good}}, folder / "whole.pt")
    (folder / "cut.pt").write_bytes((folder / "whole.pt").read_bytes()[:200])
    save_file({"emb_params": good}, str(folder / "half.safetensors"))
    (folder / "half.safetensors").write_bytes((folder / "half.safetensors").read_bytes()[:-40])
    marker = tmp_path / "pwned"
    torch.save({"string_to_param": {"*": good}, "hook": _Payload(marker)}, folder / "evil.pt")
    save_file({f"lora_unet_{i}.lora_up.weight": torch.zeros(2, 2) for i in range(3)}, str(folder / "style.safetensors"))
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    sd1.prompts.use_embeddings(list_adapters("embedding", [folder]))
    reference, _ = sd1.encode_prompt("a red apple", "", SIZE, SIZE)
    cases = {"cut": r"cut\.pt could not be read", "half": r"half\.safetensors is truncated",
             "evil": r"evil\.pt was refused: it asks to run", "style": r"style\.safetensors is not a textual-inv.*LoRA",
             "broken": r"broken\.safetensors has a corrupt safetensors header"}
    for word, message in cases.items():
        with pytest.raises(EmbeddingError, match=message) as err:
            sd1.encode_prompt(f"a {word} apple", "", SIZE, SIZE)
        assert err.value.field == "prompt"
        again, _ = sd1.encode_prompt("a red apple", "", SIZE, SIZE)
        assert torch.equal(again["context"], reference["context"])  # nothing of the failed prompt stays behind
    assert not marker.exists()
    with pytest.raises(EmbeddingError) as err:
        sd1.encode_prompt("a red apple", "cut", SIZE, SIZE)
    assert err.value.field == "negative_prompt"
    whole, _ = sd1.encode_prompt("a whole apple", "", SIZE, SIZE)  # the good file beside them works
    assert not torch.equal(whole["context"], reference["context"])


def test_a_run_through_the_runner_uses_the_embeddings_and_writes_ti_hashes(webui, sd1):
    root, models, _ = webui
    adapters = AdapterLibrary(checkpoint=models["sd1"], include_defaults=False)
    runner = Runner(sd1, adapters=adapters)
    base = dict(negative_prompt="blurred, rusty", sampler="euler", steps=2, seed=5, width=SIZE, height=SIZE)
    result = runner.run(GenerationRequest(prompt="a shiny apple, rusty", **base))
    files = {"shiny": "shiny.safetensors", "rusty": "rusty.pt", "blurred": "blurred.bin"}
    digest = {n: hashlib.sha256((root / "embeddings" / f).read_bytes()).hexdigest()[:12] for n, f in files.items()}
    assert result.infotext == (("TI hashes", f'"shiny: {digest["shiny"]}, rusty: {digest["rusty"]}, '
                                              f'blurred: {digest["blurred"]}"'),)
    plain_words = runner.run(GenerationRequest(prompt="a shiny apple, rusty", **{**base, "negative_prompt": ""}))
    without = Runner(sd1).run(GenerationRequest(prompt="a shiny apple, rusty", **{**base, "negative_prompt": ""}))
    assert not np.array_equal(plain_words.latent, without.latent) and without.infotext == ()
    # Without an embedding in the prompt the run is bit-identical to one with no embeddings at all.
    a = runner.run(GenerationRequest(prompt="a red apple", **{**base, "negative_prompt": "blur"}))
    b = Runner(sd1).run(GenerationRequest(prompt="a red apple", **{**base, "negative_prompt": "blur"}))
    assert np.array_equal(a.latent, b.latent) and np.array_equal(a.image, b.image) and a.infotext == ()


def test_same_conditioning_as_diffusers_load_textual_inversion(webui, sd1):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    root, _, _ = webui
    enc = sd1.prompts
    pipe = StableDiffusionPipeline(vae=sd1.vae, text_encoder=copy.deepcopy(enc.encoders[0]),
                                   tokenizer=copy.deepcopy(enc.tokenizers[0]), unet=sd1.unet,
                                   scheduler=EulerDiscreteScheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.load_textual_inversion(str(root / "embeddings" / "shiny.safetensors"), token="shiny")
    prompt = "a shiny red apple on a wooden table"  # diffusers adds shiny, shiny_1, shiny_2 to the vocabulary
    with torch.no_grad():
        reference, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
    enc.use_embeddings(files_of(webui))
    cond, _ = sd1.encode_prompt(prompt, "", SIZE, SIZE)
    assert torch.allclose(cond["context"], reference.float(), atol=1e-6)


def test_half_precision_weights_get_the_vectors_in_their_dtype(webui):
    _, models, vectors = webui
    model = load_sd_model(models["sd1"], dtype=torch.bfloat16)
    model.use_embeddings(files_of(webui))
    text = getattr(model.prompts.encoders[0], "text_model", model.prompts.encoders[0])
    seen = []
    handle = text.encoder.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["inputs_embeds"]), with_kwargs=True)
    try:
        cond, _ = model.encode_prompt("a shiny apple", "", SIZE, SIZE)
    finally:
        handle.remove()
    # What the transformer layers receive at the embedding's places: its vectors (in bf16) + the position embeddings.
    positions = text.embeddings.position_embedding.weight[2:5]
    assert seen[0].dtype == torch.bfloat16 and torch.isfinite(cond["context"]).all()
    assert torch.equal(seen[0][0, 2:5], vectors["shiny"].to(torch.bfloat16) + positions)


def test_sdxl_same_conditioning_as_diffusers_load_textual_inversion_on_both_encoders(webui, sdxl):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from safetensors.torch import load_file

    root, _, _ = webui
    enc = sdxl.prompts
    pipe = StableDiffusionXLPipeline(vae=sdxl.vae, text_encoder=copy.deepcopy(enc.encoders[0]),
                                     text_encoder_2=copy.deepcopy(enc.encoders[1]),
                                     tokenizer=copy.deepcopy(enc.tokenizers[0]),
                                     tokenizer_2=copy.deepcopy(enc.tokenizers[1]), unet=sdxl.unet,
                                     scheduler=EulerDiscreteScheduler(), add_watermarker=False)
    parts = load_file(str(root / "embeddings" / "sdxl" / "glossy.safetensors"))
    pipe.load_textual_inversion(parts["clip_l"], token="glossy", text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(parts["clip_g"], token="glossy", text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    prompt = "a glossy red car in the rain"
    with torch.no_grad():
        reference = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                       do_classifier_free_guidance=False)[0]
    enc.use_embeddings(files_of(webui, "sdxl"))
    cond, _ = sdxl.encode_prompt(prompt, "", SIZE, SIZE)
    # The context (both encoders' penultimate states) is the same. The pooled state is not compared: diffusers
    # gives the new words ids above the end token, and these tiny configs pool at the largest id.
    assert torch.allclose(cond["context"], reference.float(), atol=1e-6)
