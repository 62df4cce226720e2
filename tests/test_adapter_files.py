"""LoRA, embedding and ControlNet files are found where AUTOMATIC1111 and ComfyUI keep them."""

import os

import pytest

from studio.engine.models.sd.adapter_files import AdapterNotFound, adapter_dirs, list_adapters, resolve_adapter


@pytest.fixture()
def disk(tmp_path):
    webui = tmp_path / "stable-diffusion-webui"
    (webui / "models" / "Stable-diffusion").mkdir(parents=True)
    (webui / "models" / "Lora" / "styles").mkdir(parents=True)
    (webui / "models" / "Lora" / "styles" / "Detail_Tweaker.safetensors").write_bytes(b"")
    (webui / "models" / "Lora" / "notes.txt").write_text("not a LoRA")
    (webui / "embeddings").mkdir()
    (webui / "embeddings" / "EasyNegative.safetensors").write_bytes(b"")
    comfy = tmp_path / "ComfyUI" / "models"
    (comfy / "checkpoints").mkdir(parents=True)
    (comfy / "loras").mkdir()
    (comfy / "loras" / "pixel.safetensors").write_bytes(b"")
    (comfy / "controlnet" / "canny_diffusers").mkdir(parents=True)
    (comfy / "controlnet" / "canny_diffusers" / "config.json").write_text("{}")
    (comfy / "controlnet" / "control_v11p_sd15_scribble.pth").write_bytes(b"")
    return webui, comfy


def test_found_beside_each_checkpoint_folder(disk):
    webui, comfy = disk
    folders = (str(webui / "models" / "Stable-diffusion"), str(comfy / "checkpoints"))
    loras = list_adapters("lora", adapter_dirs("lora", folders, include_defaults=False))
    assert [a.name for a in loras] == ["Detail_Tweaker", "pixel"]
    embeddings = list_adapters("embedding", adapter_dirs("embedding", folders, include_defaults=False))
    assert [a.name for a in embeddings] == ["EasyNegative"]
    nets = list_adapters("controlnet", adapter_dirs("controlnet", folders, include_defaults=False))
    assert [a.name for a in nets] == ["canny_diffusers", "control_v11p_sd15_scribble"]


def test_a_folder_set_straight_at_the_lora_folder(disk):
    webui, _ = disk
    dirs = adapter_dirs("lora", (str(webui / "models" / "Lora"),), include_defaults=False)
    assert [a.name for a in list_adapters("lora", dirs)] == ["Detail_Tweaker"]


def test_names_resolve_case_insensitively_and_typos_name_the_closest(disk):
    webui, _ = disk
    loras = list_adapters("lora", adapter_dirs("lora", (str(webui / "models"),), include_defaults=False))
    assert resolve_adapter("lora", "detail_tweaker", loras).path.name == "Detail_Tweaker.safetensors"
    with pytest.raises(AdapterNotFound) as err:
        resolve_adapter("lora", "detail_tweeker", loras)
    assert "closest: Detail_Tweaker" in str(err.value) and err.value.field == "prompt"
    with pytest.raises(AdapterNotFound, match="no LoRA files were found"):
        resolve_adapter("lora", "x", [])


def test_a_file_added_to_a_listed_folder_is_seen_on_the_next_list(disk):
    from studio.engine.models.sd.adapter_files import AdapterLibrary

    webui, _ = disk
    library = AdapterLibrary((str(webui / "models" / "Stable-diffusion"),), include_defaults=False)
    assert [a.name for a in library.list("embedding")] == ["EasyNegative"]
    first = library.list("embedding")
    assert library.list("embedding") is first  # unchanged folders are not walked again
    (webui / "embeddings" / "shiny.pt").write_bytes(b"")
    os.utime(webui / "embeddings", ns=(0, 10**18))  # a new mtime even where the clock's step is coarse
    assert [a.name for a in library.list("embedding")] == ["EasyNegative", "shiny"]
