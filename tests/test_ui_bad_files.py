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
