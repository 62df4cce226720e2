"""The studio starts whatever lies in its folders: a bad file is set aside with a message, odd values adapted."""

import json

import pytest

from studio.state.paths import StudioPaths


def start(qtbot, root):
    from studio.app import create_studio

    studio = create_studio(StudioPaths.under(root))
    qtbot.addWidget(studio.window)
    studio.window.show()
    return studio


def write(path, content: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff\xfe not json", b'{"threads": 1e999}', b"[1, 2]"],
                         ids=["deep", "binary", "infinity", "list"])
def test_a_bad_settings_file_is_set_aside_and_the_window_says_so(qtbot, tmp_path, content):
    settings_file = StudioPaths.under(tmp_path).settings_file
    write(settings_file, content)
    studio = start(qtbot, tmp_path)
    assert "Settings could not be read" in studio.window.banner.text()
    assert not settings_file.exists() and len(list(settings_file.parent.glob("settings.json.corrupt-*"))) == 1
    assert studio.window.panel.values().steps == 20


def test_settings_values_no_widget_can_hold_are_adapted(qtbot, tmp_path):
    panel = {"steps": 99999999999, "width": -8, "height": 100000, "seed": 2**64, "batch_count": 0}
    write(StudioPaths.under(tmp_path).settings_file, json.dumps({"panel": panel, "threads": 2**40}).encode())
    studio = start(qtbot, tmp_path)
    values = studio.window.panel.values()
    assert (values.steps, values.width, values.height, values.batch_count) == (1000, 8, 2048, 1)
    assert studio.window.canvas.image().shape == (2048, 8, 3)
    assert studio.controller.settings.threads == 0
    assert "Saved settings were adapted" in studio.window.banner.text()
    assert "Steps 99999999999 is more than 1000" in studio.window.banner.text()


def test_a_damaged_autosave_is_set_aside_and_the_window_says_so(qtbot, tmp_path):
    autosave_dir = StudioPaths.under(tmp_path).autosave_dir
    write(autosave_dir / "autosave.zip", b"PK\x03\x04 truncated")
    studio = start(qtbot, tmp_path)
    assert "autosaved document could not be restored" in studio.window.banner.text()
    assert len(list(autosave_dir.glob("autosave.zip.corrupt-*"))) == 1
    assert studio.window.canvas.image().shape == (64, 64, 3)  # a blank canvas at the panel's size


def test_an_old_autosave_with_a_bad_panel_is_set_aside(qtbot, tmp_path):
    autosave_dir = StudioPaths.under(tmp_path).autosave_dir
    write(autosave_dir / "panel.json", b"[" * 100_000)
    studio = start(qtbot, tmp_path)
    assert "panel.json" in studio.window.banner.text()
    assert len(list(autosave_dir.glob("panel.json.corrupt-*"))) == 1


def test_bad_history_entries_are_set_aside_and_odd_values_adapted(qtbot, tmp_path):
    import io

    from PIL import Image

    from tests.fuzz_targets import png_header_only

    history_dir = StudioPaths.under(tmp_path).history_dir
    good_png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(good_png, format="PNG")
    for entry_id, sidecar, png in (
            ("20240101-000000-001", b"[" * 100_000, good_png.getvalue()),
            ("20240101-000000-002", json.dumps({"values": {"steps": 99999999999, "prompt": "odd"}}).encode(),
             png_header_only(100_000, 100_000))):
        write(history_dir / f"{entry_id}.json", sidecar)
        write(history_dir / f"{entry_id}.png", png)
    studio = start(qtbot, tmp_path)
    assert "1 history entry could not be read" in studio.window.banner.text()
    model = studio.window.history_view.model
    assert model.rowCount() == 1 and model.data(model.index(0)) == "odd"
    model.data(model.index(0), 1)  # the thumbnail of a decompression bomb: none, and no exception
    entry = model.entry(0)
    studio.controller.use_history_settings(entry)
    assert studio.window.panel.values().steps == 1000
    studio.controller.open_history_entry(entry)
    assert "10,000,000,000 pixels; the studio opens images up to" in studio.window.banner.text()


def test_parameters_beyond_the_panels_ranges_are_adapted_with_a_notice(qtbot, tmp_path):
    import numpy as np

    from studio.io.png import save_image

    png = save_image(tmp_path / "odd.png", np.zeros((8, 8, 3), np.uint8),
                     "a cat\nSteps: 99999999999, Sampler: Euler, Seed: 99999999999, Size: 100000x64")
    studio = start(qtbot, tmp_path / "home")
    studio.controller.files.open_file(str(png))
    values = studio.window.panel.values()
    assert (values.prompt, values.steps, values.width, values.height) == ("a cat", 1000, 2048, 64)
    text = studio.window.banner.text()
    assert "Settings restored from odd.png" in text and "Steps 99999999999 is more than 1000" in text
