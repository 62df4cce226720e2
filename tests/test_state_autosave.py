"""Autosave as one unit: a kill at any moment restores one moment's image, mask and panel together."""

import os
import zipfile

import numpy as np
import pytest

from studio.state import files
from studio.state.autosave import Autosave, AutosaveError, Snapshot
from studio.state.panel_values import PanelValues


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs."""


def snapshot(n: int) -> Snapshot:
    mask = np.zeros((8, 8), np.float32)
    mask[:n] = 1
    return Snapshot(np.full((8, 8, 3), n, np.uint8), mask, PanelValues(prompt=f"moment {n}"))


@pytest.mark.parametrize("renames_before_kill", [0, 1, 2])
def test_a_kill_during_a_save_keeps_one_moment_whole(tmp_path, monkeypatch, renames_before_kill):
    autosave = Autosave(tmp_path)
    autosave.save(snapshot(1))
    real_replace, done = os.replace, []

    def replace_then_die(src, dst):
        if len(done) == renames_before_kill:
            raise Killed
        done.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace_then_die)
    with pytest.raises(Killed):
        autosave.save(snapshot(2))
        raise Killed  # the save finished before the kill
    monkeypatch.undo()
    back = autosave.load()
    n = int(back.image[0, 0, 0])
    assert n in (1, 2) and back.panel.prompt == f"moment {n}" and back.mask[:n].all() and not back.mask[n:].any()


def test_the_old_three_file_layout_is_read_once_then_replaced(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((6, 10, 3), 90, np.uint8)).save(tmp_path / "image.png")
    Image.fromarray(np.full((6, 10), 255, np.uint8)).save(tmp_path / "mask.png")
    (tmp_path / "panel.json").write_text('{"prompt": "from before", "steps": 99999999999}')
    autosave = Autosave(tmp_path)
    back = autosave.load()
    assert back.image.shape == (6, 10, 3) and back.mask.min() == 1.0
    assert back.panel.prompt == "from before" and back.panel.steps == 1000
    autosave.save(back)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autosave.zip"]
    assert autosave.load().panel.prompt == "from before"


def test_the_control_layer_is_kept_with_its_image(tmp_path):
    autosave = Autosave(tmp_path)
    control = np.zeros((8, 8, 3), np.uint8)
    control[2:4] = 255
    autosave.save(Snapshot(np.full((8, 8, 3), 5, np.uint8), None, PanelValues(), control))
    back = autosave.load()
    assert np.array_equal(back.control, control) and back.mask is None
    autosave.save(snapshot(1))  # an empty layer is not saved: none comes back
    assert autosave.load().control is None


@pytest.mark.parametrize("damage", ["truncated", "noise", "deep panel", "mask of another size", "bomb",
                                    "bad control image", "control of another size"])
def test_a_damaged_autosave_is_set_aside_with_a_message(tmp_path, damage):
    autosave = Autosave(tmp_path)
    autosave.save(snapshot(3))
    if damage == "truncated":
        autosave.file.write_bytes(autosave.file.read_bytes()[:-30])
    elif damage == "noise":
        autosave.file.write_bytes(os.urandom(500))
    else:
        with zipfile.ZipFile(autosave.file, "w") as archive:
            if damage == "deep panel":
                archive.writestr("panel.json", "[" * 100_000)
            elif damage in ("mask of another size", "control of another size"):
                from PIL import Image

                part = "mask.png" if damage.startswith("mask") else "control.png"
                for name, size in (("image.png", (8, 8)), (part, (4, 4))):
                    Image.new("L", size).save(tmp_path / name)
                    archive.write(tmp_path / name, name)
                    (tmp_path / name).unlink()
            elif damage == "bad control image":
                from PIL import Image

                Image.new("RGB", (8, 8)).save(tmp_path / "image.png")
                archive.write(tmp_path / "image.png", "image.png")
                archive.writestr("control.png", b"\x89PNG\r\n\x1a\n" + os.urandom(200))
            else:
                from tests.fuzz_targets import png_header_only

                archive.writestr("image.png", png_header_only(100_000, 100_000))
    with pytest.raises(AutosaveError):
        autosave.load()
    back, message = autosave.recover()
    assert back.image is None and back.panel is None
    assert "could not be restored" in message and "autosave.zip.corrupt-" in message
    assert not autosave.file.exists() and len(list(tmp_path.glob("autosave.zip.corrupt-*"))) == 1


def test_stale_temp_files_are_removed_and_fresh_ones_kept(tmp_path):
    stale, fresh, other = tmp_path / ".autosave.zip.abc.tmp", tmp_path / ".autosave.zip.def.tmp", tmp_path / "x.tmp"
    for path in (stale, fresh, other):
        path.write_bytes(b"half")
    os.utime(stale, (0, 0))
    os.utime(other, (0, 0))
    assert files.remove_stale_temp_files(tmp_path) == [stale]
    assert fresh.exists() and other.exists()  # not ours, or possibly another window's write in progress
