"""The panel's Text encoders / VAE picker for split flow models: shown for those only, the dialog's edits, the
choice kept in the settings per model and handed to the engine, which loads the model with it; and the loaded
model's precision per part under the picker."""

from __future__ import annotations

import pytest
import torch

from studio.engine.models.flow import FLOW_LOADERS
from studio.state.jobs import EngineCatalog, ModelChoice
from studio.state.model_parts import ModelParts, parts_from_json
from studio.state.settings import Settings
from studio.ui.model_parts_dialog import ModelPartsDialog
from studio.ui.prompt_panel import PromptPanel
from tests.test_flow_layout import FLUX, T5, VAE, clip, write

FLUX_CHOICE = ModelChoice("sd:/m/flux1-dev.safetensors", "flux1-dev (Flux.1 dev)", family="flux")
SD1 = ModelChoice("sd:/m/one.safetensors", "one (SD 1.x)", family="sd1")
CATALOG = EngineCatalog((SD1, FLUX_CHOICE), (("euler", "Euler"),), ("leading",), SD1.key, "cpu")


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_catalog(CATALOG)
    widget.show()
    return widget


def test_the_picker_shows_for_flow_models_only_and_names_the_model(panel, qtbot):
    assert not panel.parts_button.isVisible()
    panel.set_values(panel.values().with_changes(model=FLUX_CHOICE.key))
    assert panel.parts_button.isVisible() and not panel.loaded_as.isVisible()
    with qtbot.waitSignal(panel.parts_requested) as asked:
        panel.parts_button.click()
    assert asked.args == [FLUX_CHOICE.key]
    loaded = ModelChoice(FLUX_CHOICE.key, FLUX_CHOICE.label, family="flux", loaded_as=(
        "transformer: GGUF Q4_K -> bf16 (flux1-dev-Q4_K_S.gguf)", "t5xxl: fp8 e4m3fn -> bf16 (t5xxl_fp8.safetensors)"))
    panel.set_model_info(loaded)
    assert panel.loaded_as.isVisible()
    assert panel.loaded_as.text() == "transformer: GGUF Q4_K → bf16\nt5xxl: fp8 e4m3fn → bf16"
    assert panel.loaded_as.toolTip() == ("transformer: GGUF Q4_K → bf16 (flux1-dev-Q4_K_S.gguf)\n"
                                         "t5xxl: fp8 e4m3fn → bf16 (t5xxl_fp8.safetensors)")
    panel.set_values(panel.values().with_changes(model=SD1.key))
    assert not panel.parts_button.isVisible() and not panel.loaded_as.isVisible()


def test_the_dialog_adds_removes_and_picks_a_vae(qtbot):
    answers = [["/x/t5xxl_fp16.safetensors", "/x/clip_l.safetensors"], ["/y/ae.safetensors"]]
    dialog = ModelPartsDialog("flux1-dev", ModelParts(("/old/clip_l.safetensors",)), "/x",
                              chooser=lambda parent, title, folder, several: answers.pop(0))
    qtbot.addWidget(dialog)
    dialog.add_button.click()
    dialog.encoders.setCurrentRow(0)
    dialog.remove_button.click()
    browse = [b for b in dialog.findChildren(type(dialog.add_button)) if b.text() == "Browse…"][0]
    browse.click()
    assert dialog.parts() == ModelParts(("/x/t5xxl_fp16.safetensors", "/x/clip_l.safetensors"), "/y/ae.safetensors")
    dialog.vae.clear()
    assert dialog.parts().vae == ""


def test_settings_keep_the_choice_per_model_and_drop_junk():
    settings = Settings(model_parts={"sd:/m/flux.safetensors": ModelParts(("/t5.safetensors",), "/ae.safetensors")})
    again = Settings.from_json(settings.to_json())
    assert again.model_parts == settings.model_parts
    assert parts_from_json({"k": {"text_encoders": ["ok", 3, "\0bad"], "vae": 7}, "j": [], 5: {}}) == {
        "k": ModelParts(("ok",))}
    assert parts_from_json("nonsense") == {}


def test_a_missing_encoder_is_picked_in_the_panel_and_the_model_loads(qtbot, tmp_path, monkeypatch):
    models = tmp_path / "ComfyUI" / "models"
    flux = write(models / "diffusion_models" / "flux1-dev.safetensors", FLUX)
    write(models / "text_encoders" / "clip_l.safetensors", clip())
    write(models / "vae" / "ae.safetensors", VAE, torch.float32)
    t5 = write(tmp_path / "downloads" / "t5xxl_fp8_e4m3fn.safetensors", T5, torch.float8_e4m3fn)
    monkeypatch.setenv("DIFFUSION_STUDIO_SD_DIRS", str(models / "diffusion_models"))

    def toy_as_flux(files, device, dtype):  # stands in for the Flux loader: the toy model with the files' report
        from studio.engine.models.flow.offload import MemoryPlan
        from studio.engine.models.toy import ToyShapesModel

        toy = ToyShapesModel(device=device)
        toy.place = lambda mode, free=None: MemoryPlan("none", "nothing to place", on_gpu=False)  # as a FlowModel
        return toy

    monkeypatch.setitem(globals(), "_toy_as_flux", toy_as_flux)
    monkeypatch.setitem(FLOW_LOADERS, "flux", f"{__name__}:_toy_as_flux")
    from tests.test_ui_studio import make_studio

    studio = make_studio(qtbot, tmp_path / "home")
    try:
        panel, key = studio.window.panel, f"sd:{flux}"
        assert panel.model.findData(key) >= 0
        panel.model.setCurrentIndex(panel.model.findData(key))
        qtbot.waitUntil(lambda: "needs its t5xxl text encoder" in studio.window.banner.text(), timeout=20_000)
        assert panel.parts_button.isVisible()
        studio.controller.model_parts.chooser = lambda parent, title, folder, several: [str(t5)]
        panel.parts_button.click()
        dialog = studio.controller.model_parts.dialog
        dialog.add_button.click()
        dialog.accept()
        assert studio.controller.settings.model_parts[key] == ModelParts((str(t5),))
        qtbot.waitUntil(lambda: panel.loaded_as.isVisible(), timeout=20_000)
        assert "t5xxl: fp8 e4m3fn → fp32 (t5xxl_fp8_e4m3fn.safetensors)" in panel.loaded_as.toolTip()
        assert panel.model.property("error") is False  # the load's failure no longer outlines the model
        qtbot.waitUntil(lambda: studio.window.status.engine_label.text().startswith("Ready · flux1-dev"))
    finally:
        studio.controller.shutdown()
    saved = Settings.from_json(__import__("json").loads((tmp_path / "home").joinpath(
        *studio.controller.paths.settings_file.relative_to(tmp_path / "home").parts).read_text()))
    assert saved.model_parts[key] == ModelParts((str(t5),))
