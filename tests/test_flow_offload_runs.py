"""Placement inside real runs of tiny random Flux.1 and SD 3 models: each phase puts its own group on the device
(prompts: the text encoders; steps: the transformer; pixels: the VAE), and streaming the blocks gives the very
same image as keeping everything in place. The device here is the CPU, with an observer recording the moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from studio.engine.models.flow.flux import load_flux  # noqa: E402
from studio.engine.models.flow.offload import Placement, blocks_of  # noqa: E402
from studio.engine.models.flow.parts import ModelFiles  # noqa: E402
from studio.engine.models.flow.sd3 import load_sd3  # noqa: E402
from studio.engine.models.flow.testing_flux import build_random_flux  # noqa: E402
from studio.engine.models.flow.testing_flux import save_diffusers as save_flux  # noqa: E402
from studio.engine.models.flow.testing_sd3 import build_random_sd3  # noqa: E402
from studio.engine.models.flow.testing_sd3 import save_diffusers as save_sd3  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("offload")
    return {"flux": save_flux(build_random_flux("dev", layers=(2, 2)), root / "flux"),
            "sd3": save_sd3(build_random_sd3("sd3", seed=1), root / "sd3")}


@pytest.fixture(scope="module")
def models(folders):
    return {"flux": load_flux(ModelFiles("flux", folders["flux"]), CPU, torch.float32),
            "sd3": load_sd3(ModelFiles("sd3", folders["sd3"]), CPU, torch.float32)}


def request(**kw) -> GenerationRequest:
    base = dict(prompt="a red fox", negative_prompt="blurry", width=64, height=64, steps=3, seed=5, cfg_scale=2.0,
                sampler="euler", spacing="trailing")
    return GenerationRequest(**{**base, **kw})


def placed(model, mode: str) -> list[tuple[str, bool]]:
    """Give ``model`` a Placement in ``mode`` that records its moves into the list returned."""
    moves: list[tuple[str, bool]] = []
    if model.placement is not None:
        model.placement.close()
    model.placement = Placement(model.memory_groups(), model.device, mode,
                                observer=lambda what, on: moves.append((what, on)))
    return moves


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_each_phase_has_its_group_on_the_device(models, family):
    model = models[family]
    moves = placed(model, "model")
    image = np.full((64, 64, 3), 120, np.uint8)
    Runner(model).run(request(prompt=f"a {family} fox", init_image=image, strength=0.6))
    assert moves == [("vae", True), ("vae", False), ("text_encoders", True), ("text_encoders", False),
                     ("transformer", True), ("transformer", False), ("vae", True)]  # init image, prompt, steps, image


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_streaming_the_blocks_gives_the_same_image_bit_for_bit(models, family):
    model = models[family]
    placed(model, "none")
    want = Runner(model).run(request(prompt=f"{family} streamed"))
    moves = placed(model, "sequential")
    got = Runner(model).run(request(prompt=f"{family} streamed"))
    assert np.array_equal(got.image, want.image) and np.array_equal(got.latent, want.latent)
    blocks = {what for what, _ in moves if what.startswith("transformer/")}
    assert len(blocks) == len(blocks_of(model.transformer)) >= 2
    runs = {b: [on for what, on in moves if what == b] for b in blocks}
    calls = len(runs["transformer/0"]) // 2
    assert calls >= 3  # every step ran every block, each time in and out again
    assert all(r == [True, False] * calls for r in runs.values())


def test_the_command_line_setting_reaches_the_models_placement(folders, tmp_path, monkeypatch, capsys):
    from studio.cli import main
    from studio.engine.models.flow.model import FlowModel

    asked = []
    place = FlowModel.place
    monkeypatch.setattr(FlowModel, "place", lambda self, mode="auto", free=None: asked.append(mode) or
                        place(self, mode, free))
    out = tmp_path / "fox.png"
    code = main(["generate", "--model", str(folders["sd3"]), "--offload", "sequential", "--prompt", "a fox",
                 "--steps", "1", "--width", "64", "--height", "64", "--seed", "1", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert asked == ["sequential"] and out.is_file()
    with pytest.raises(SystemExit):
        main(["generate", "--offload", "all"])
    assert "invalid choice: 'all'" in capsys.readouterr().err
