"""Textual-inversion embeddings from the command line: a tiny SD 1.x model in an AUTOMATIC1111 folder."""

from __future__ import annotations

import hashlib

import pytest

pytest.importorskip("diffusers")
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from studio.cli import main  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_diffusers  # noqa: E402
from studio.io.png import read_parameters  # noqa: E402


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    """(webui folder, the model's key): models/Stable-diffusion/tiny and embeddings/ beside it."""
    root = tmp_path_factory.mktemp("webui") / "stable-diffusion-webui"
    folder = save_diffusers(build_random("sd1", seed=0), root / "models" / "Stable-diffusion" / "tiny")
    (root / "embeddings").mkdir()
    gen = torch.Generator().manual_seed(1)
    save_file({"emb_params": torch.randn(2, 32, generator=gen)}, str(root / "embeddings" / "shiny.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(1, 32, generator=gen)}}, root / "embeddings" / "blurred.pt")
    (root / "embeddings" / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    return root, f"sd:{folder}"


def _generate(key, out, prompt, *extra):
    return main(["generate", "--model", key, "--prompt", prompt, "--steps", "2", "--width", "64", "--height", "64",
                 "--seed", "1", "--out", str(out), "--quiet", *extra])


def _short_hash(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_embeddings_named_in_the_prompts_are_used_and_their_hashes_written(webui, tmp_path):
    root, key = webui
    assert _generate(key, tmp_path / "a.png", "a Shiny apple", "--negative", "blurred") == 0
    last = read_parameters(tmp_path / "a.png").splitlines()[-1]
    folder = root / "embeddings"
    shiny, blurred = _short_hash(folder / "shiny.safetensors"), _short_hash(folder / "blurred.pt")
    assert f'TI hashes: "shiny: {shiny}, blurred: {blurred}"' in last


def test_a_word_that_is_no_embedding_is_just_a_word(webui, tmp_path, capsys):
    _, key = webui
    assert _generate(key, tmp_path / "a.png", "a glittering apple", "--negative", "blurry") == 0
    assert "TI hashes" not in read_parameters(tmp_path / "a.png")
    assert "error" not in capsys.readouterr().err


def test_a_broken_embedding_the_prompt_names_exits_2_with_one_line_naming_the_file(webui, tmp_path, capsys):
    _, key = webui
    assert _generate(key, tmp_path / "a.png", "a broken apple") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.safetensors has a corrupt safetensors header" in err[0]
    assert err[0].startswith("error: prompt: ")
    assert not (tmp_path / "a.png").exists()


def test_in_the_window_a_broken_embedding_outlines_the_prompt_that_names_it(webui):
    from studio.engine.models.sd.embeddings import EmbeddingError
    from studio.state.jobs import Job
    from studio.state.panel_values import PanelValues
    from studio.worker.engine_session import EngineSession, describe_failure

    _, key = webui
    session = EngineSession("cpu")
    values = PanelValues(prompt="a shiny apple", negative_prompt="broken", model=key, steps=2, seed=3,
                         seed_mode="fixed", width=64, height=64)
    with pytest.raises(EmbeddingError) as err:
        session.run(Job(1, values), lambda event: None, lambda: False)
    failure = describe_failure(1, err.value)
    assert failure.field == "negative_prompt" and "broken.safetensors" in failure.message
    result = session.run(Job(2, values.with_changes(negative_prompt="blurred")), lambda event: None, lambda: False)
    assert 'TI hashes: "shiny: ' in result.parameters.splitlines()[-1]
