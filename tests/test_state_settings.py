"""Settings, panel values and autosave files: round trips, and damaged files never stop the studio."""

import json

import numpy as np

from studio.state.autosave import Autosave, Snapshot
from studio.state.panel_values import PanelValues, seeds_for_batch
from studio.state.settings import Settings, load_settings, save_settings


def test_settings_round_trip(tmp_path):
    path = tmp_path / "settings.json"
    settings = Settings(model_folders=("/models",), device="cpu", threads=2, theme="light",
                        panel=PanelValues(prompt="blue ring", guidance_interval=(0.5, 8.0), steps=33))
    save_settings(path, settings)
    loaded = load_settings(path)
    assert loaded.message is None and loaded.settings == settings


def test_a_corrupt_settings_file_is_set_aside_and_defaults_used(tmp_path):
    path = tmp_path / "settings.json"
    path.write_bytes(b"\xff\xfe not json")
    loaded = load_settings(path)
    assert loaded.settings == Settings() and "using defaults" in loaded.message
    assert not path.exists() and len(list(tmp_path.glob("settings.json.corrupt-*"))) == 1


def test_wrong_types_fall_back_field_by_field(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"device": "quantum", "threads": "many", "theme": "dark",
                                "panel": {"steps": "ten", "cfg_scale": 7, "seed_mode": "sometimes",
                                          "guidance_interval": [1, "x"], "prompt": "ok"}}))
    loaded = load_settings(path)
    panel = loaded.settings.panel
    assert loaded.settings.device == "auto" and loaded.settings.threads == 0
    # The panel's fields that fell back are named, so the window can say what changed.
    assert "Steps 'ten' is not a number: kept 20; " in loaded.message and "Seed mode 'sometimes'" in loaded.message
    assert (panel.steps, panel.cfg_scale, panel.seed_mode, panel.guidance_interval, panel.prompt) == (
        20, 7.0, "random", None, "ok")


def test_seeds_for_a_batch():
    fixed = PanelValues(seed=5, seed_mode="fixed", batch_count=3)
    assert seeds_for_batch(fixed, last_seed=99) == [5, 6, 7]
    assert seeds_for_batch(fixed.with_changes(seed_mode="reuse"), last_seed=99) == [99, 100, 101]
    randoms = seeds_for_batch(fixed.with_changes(seed_mode="random"), last_seed=None)
    assert len(randoms) == 3 and len(set(randoms)) == 3


def test_autosave_round_trip(tmp_path):
    autosave = Autosave(tmp_path)
    image = np.random.default_rng(1).integers(0, 255, (24, 40, 3), dtype=np.uint8)
    mask = np.zeros((24, 40), np.float32)
    mask[5:10] = 1
    autosave.save(Snapshot(image, mask, PanelValues(prompt="x")))
    back = autosave.load()
    assert np.array_equal(back.image, image) and np.array_equal(back.mask, mask) and back.panel.prompt == "x"
    autosave.save(Snapshot(image, None, PanelValues(prompt="y")))
    back = autosave.load()
    assert back.mask is None and back.panel.prompt == "y"
    assert [p.name for p in tmp_path.iterdir()] == ["autosave.zip"]  # one file: no temp file left behind
