"""LoRAs the way a user meets them outside the engine: the command line and the window's engine session.

A tiny random SD 1.x model is saved as a diffusers folder in AUTOMATIC1111's layout
(``models/Stable-diffusion/tiny``) with a LoRA beside it in ``models/Lora``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from studio.cli import main  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_diffusers  # noqa: E402
from studio.io.png import read_parameters  # noqa: E402


def _lora_for(unet, rank=2):
    gen = torch.Generator().manual_seed(0)
    out = {}
    for name, module in unet.named_modules():
        if name.endswith(("attn1.to_q", "attn2.to_v")):
            key = "lora_unet_" + name.replace(".", "_")
            out[f"{key}.lora_down.weight"] = torch.randn(rank, module.weight.shape[1], generator=gen)
            out[f"{key}.lora_up.weight"] = torch.randn(module.weight.shape[0], rank, generator=gen)
    return out


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    """(models folder, the model's key) with models/Lora/watercolor.safetensors beside the checkpoint."""
    root = tmp_path_factory.mktemp("webui") / "models"
    built = build_random("sd1", seed=0)
    folder = save_diffusers(built, root / "Stable-diffusion" / "tiny")
    (root / "Lora").mkdir()
    save_file(_lora_for(built.unet), str(root / "Lora" / "watercolor.safetensors"))
    return root, f"sd:{folder}"


def _generate(key, out, prompt, *extra):
    return main(["generate", "--model", key, "--prompt", prompt, "--steps", "2", "--width", "64", "--height", "64",
                 "--seed", "1", "--out", str(out), "--quiet", *extra])


def test_the_cli_finds_the_lora_beside_the_model_and_writes_its_hash(webui, tmp_path, capsys):
    root, key = webui
    out = tmp_path / "a.png"
    assert _generate(key, out, "an apple <lora:Watercolor:0.6>") == 0
    text = read_parameters(out)
    assert text.startswith("an apple <lora:Watercolor:0.6>")
    assert 'Lora hashes: "Watercolor: ' in text.splitlines()[-1]
    assert _generate(key, tmp_path / "b.png", "an apple") == 0
    assert "Lora hashes" not in read_parameters(tmp_path / "b.png")


def test_an_unknown_lora_name_exits_2_with_one_line_naming_it_and_the_closest(webui, tmp_path, capsys):
    _, key = webui
    assert _generate(key, tmp_path / "a.png", "an apple <lora:watercolour:1>") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no LoRA named 'watercolour'" in err and "closest: watercolor" in err


def test_lora_dir_adds_a_folder_of_any_name(webui, tmp_path):
    root, key = webui
    mine = tmp_path / "my styles"
    mine.mkdir()
    (mine / "ink.safetensors").write_bytes((root / "Lora" / "watercolor.safetensors").read_bytes())
    assert _generate(key, tmp_path / "a.png", "x <lora:ink>") == 2  # not found without the flag
    assert _generate(key, tmp_path / "b.png", "x <lora:ink>", "--lora-dir", str(mine)) == 0


def test_a_damaged_lora_exits_2_naming_the_file(webui, tmp_path, capsys):
    _, key = webui
    bad = tmp_path / "loras"
    bad.mkdir()
    (bad / "cut.safetensors").write_bytes(b"\x00" * 4)
    assert _generate(key, tmp_path / "a.png", "x <lora:cut>", "--lora-dir", str(bad)) == 2
    assert "cut.safetensors" in capsys.readouterr().err


def test_the_engine_session_writes_lora_hashes_into_the_parameters(webui):
    from studio.state.jobs import Job
    from studio.state.panel_values import PanelValues
    from studio.worker.engine_session import EngineSession

    _, key = webui
    session = EngineSession("cpu")
    values = PanelValues(prompt="an apple <lora:watercolor:0.5>", model=key, steps=2, seed=3, seed_mode="fixed",
                         width=64, height=64)
    result = session.run(Job(1, values), lambda event: None, lambda: False)
    assert 'Lora hashes: "watercolor: ' in result.parameters.splitlines()[-1]
