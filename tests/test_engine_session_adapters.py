"""The engine session's adapter catalog: Settings folders, the folders beside the loaded checkpoint, rescans."""

import pytest

from studio.worker.engine_session import EngineSession


@pytest.fixture
def webui(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no install in the usual places adds its files
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    root = tmp_path / "stable-diffusion-webui"
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    (root / "models" / "Lora").mkdir(parents=True)
    (root / "models" / "Lora" / "Detail_Tweaker.safetensors").write_bytes(b"")
    (root / "embeddings").mkdir()
    (root / "embeddings" / "EasyNegative.safetensors").write_bytes(b"")
    return root


def names(adapters, kind):
    return [a.name for a in adapters.of(kind)]


def test_the_catalog_lists_adapters_in_the_settings_folders_and_a_rescan_finds_new_ones(webui):
    session = EngineSession("cpu", model_folders=(str(webui / "models" / "Stable-diffusion"),))
    catalog = session.catalog()
    assert names(catalog.adapters, "lora") == ["Detail_Tweaker"]
    assert names(catalog.adapters, "embedding") == ["EasyNegative"]
    assert catalog.adapters.loras[0].path == str(webui / "models" / "Lora" / "Detail_Tweaker.safetensors")
    (webui / "models" / "Lora" / "film.safetensors").write_bytes(b"")
    assert names(session.adapter_catalog(rescan=True), "lora") == ["Detail_Tweaker", "film"]


def test_a_lora_folder_set_by_itself_in_settings(tmp_path, webui):
    mine = tmp_path / "my stuff" / "Lora"
    mine.mkdir(parents=True)
    (mine / "pixel.safetensors").write_bytes(b"")
    session = EngineSession("cpu")
    assert names(session.catalog().adapters, "lora") == []
    session.set_model_folders((str(mine),))
    assert names(session.catalog().adapters, "lora") == ["pixel"]


def test_the_lists_follow_the_loaded_checkpoint_and_the_runner_sees_new_folders(tmp_path, webui, monkeypatch):
    from studio.engine.models.toy import ToyShapesModel
    from studio.worker import engine_session

    # What is loaded does not matter here, only where the checkpoint is (a real tiny SD load takes 30 s).
    monkeypatch.setattr(engine_session, "load_model", lambda key, device, **options: ToyShapesModel())
    checkpoint = webui / "models" / "Stable-diffusion" / "tiny.safetensors"
    session = EngineSession("cpu")  # no Settings folders: only the checkpoint's place tells where its LoRAs are
    assert names(session.adapter_catalog(), "lora") == []
    session.ensure_model(f"sd:{checkpoint}")
    assert names(session.adapter_catalog(), "lora") == ["Detail_Tweaker"]
    assert names(session.adapter_catalog(), "embedding") == ["EasyNegative"]
    mine = tmp_path / "Lora"
    mine.mkdir()
    (mine / "pixel.safetensors").write_bytes(b"")
    session.set_model_folders((str(mine),))  # Settings changed: the runner resolves names there too
    assert session.runner.adapters.find("lora", "pixel").path == mine / "pixel.safetensors"
    assert names(session.adapter_catalog(), "lora") == ["Detail_Tweaker", "pixel"]
