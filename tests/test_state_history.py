"""The history store: entries with parameters survive a reload; damaged entries are skipped; delete works."""

import numpy as np

from studio.io.png import read_parameters
from studio.state.history import HistoryModel, HistoryStore
from studio.state.job_builder import build_branch, build_jobs, canvas_inputs
from studio.state.panel_values import PanelValues


def test_entries_survive_a_reload_newest_first(tmp_path):
    store = HistoryStore(tmp_path)
    image = np.zeros((32, 32, 3), np.uint8)
    first = store.add(image, PanelValues(prompt="one"), "one\nSteps: 3, Sampler: Euler, Seed: 1", "Toy")
    second = store.add(image, PanelValues(prompt="two"), "two\nSteps: 3, Sampler: Euler, Seed: 2", "Toy")
    entries = HistoryStore(tmp_path).entries()
    assert [e.entry_id for e in entries] == [second.entry_id, first.entry_id]
    assert entries[0].values.prompt == "two" and read_parameters(entries[0].image_file).startswith("two")


def test_damaged_entries_are_skipped_and_delete_removes_files(tmp_path, qtbot):
    store = HistoryStore(tmp_path)
    entry = store.add(np.zeros((8, 8, 3), np.uint8), PanelValues(), "x", "Toy")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "orphan.json").write_text('{"values": {}}')  # no image beside it
    model = HistoryModel(store)
    assert model.rowCount() == 1 and model.data(model.index(0)) == PanelValues().prompt
    model.delete(0)
    model.writer.flush()
    assert model.rowCount() == 0 and entry.image_file.exists()  # kept until the delete cannot be undone
    model.purge_deleted()
    model.writer.flush()
    assert not entry.image_file.exists() and not entry.meta_file.exists()


def test_a_deleted_entry_comes_back_in_its_place(tmp_path, qtbot):
    model = HistoryModel(HistoryStore(tmp_path))
    for prompt in ("one", "two", "three"):
        model.add(np.zeros((8, 8, 3), np.uint8), PanelValues(prompt=prompt), prompt, "Toy")
    assert [model.entry(r).values.prompt for r in range(3)] == ["three", "two", "one"]
    model.delete(1)
    model.delete(0)
    assert model.undo_delete().values.prompt == "three" and model.undo_delete().values.prompt == "two"
    assert [model.entry(r).values.prompt for r in range(3)] == ["three", "two", "one"]
    assert model.undo_delete() is None and not model.can_undo_delete()


def test_history_model_adds_at_once_and_writes_in_the_background(tmp_path, qtbot):
    model = HistoryModel(HistoryStore(tmp_path))
    entry = model.add(np.zeros((16, 16, 3), np.uint8), PanelValues(prompt="p"), "p\nSteps: 1", "Toy")
    assert model.rowCount() == 1 and not model.data(model.index(0), 1).isNull()  # thumbnail at once
    model.writer.flush()
    assert entry.meta_file.exists() and HistoryStore(tmp_path).entries()[0].entry_id == entry.entry_id


def test_jobs_take_the_mode_from_mask_and_strength():
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), np.float32)
    text = PanelValues(width=32, height=32, strength=1.0)
    assert canvas_inputs(text, image, None) == (None, None)
    init, m = canvas_inputs(text.with_changes(strength=0.5), image, None)
    assert init.shape == (32, 32, 3) and m is None
    init, m = canvas_inputs(text, image, mask)
    assert init.shape == (32, 32, 3) and m.shape == (32, 32)
    ids = iter(range(1, 10))
    jobs = build_jobs(text.with_changes(batch_count=2, seed=3, seed_mode="fixed"), image, None, None,
                      lambda: next(ids))
    assert [(j.job_id, j.values.seed, j.batch_index, j.batch_count) for j in jobs] == [(1, 3, 0, 2), (2, 4, 1, 2)]
    branch = build_branch(text.with_changes(seed=99, prompt="new"), text.with_changes(seed=7), 5, 3, image, None, 9)
    assert branch.branch_from == (5, 3) and branch.values.seed == 7 and branch.values.prompt == "new"


def test_tidy_removes_what_a_kill_left_and_sets_bad_sidecars_aside(tmp_path):
    import os

    store = HistoryStore(tmp_path)
    image = np.zeros((8, 8, 3), np.uint8)
    kept = store.add(image, PanelValues(prompt="kept"), "kept", "Toy")
    half = store.add(image, PanelValues(), "half", "Toy")
    half.meta_file.unlink()  # killed before the sidecar: image and thumbnail without it
    lone = store.add(image, PanelValues(), "lone", "Toy")
    lone.image_file.unlink()  # a sidecar without its image
    bad = store.add(image, PanelValues(), "bad", "Toy")
    bad.meta_file.write_text("[" * 100_000)
    fresh = store.add(image, PanelValues(), "fresh", "Toy")
    fresh.meta_file.unlink()  # as if another window were writing it right now
    temp = tmp_path / f".{kept.entry_id}.json.x1.tmp"
    temp.write_text("{")
    mine = tmp_path / "my picture.png"  # not a name the store gives: never deleted
    mine.write_bytes(b"x")
    for path in tmp_path.iterdir():
        if fresh.entry_id not in path.name:
            os.utime(path, (0, 0))

    message = store.tidy()
    assert message is not None and bad.meta_file.name in message and "set-aside" in message
    assert sorted(p.name for p in (tmp_path / "set-aside").iterdir()) == sorted(
        [bad.meta_file.name, bad.image_file.name, bad.thumb_file.name])
    left = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert left == {kept.meta_file.name, kept.image_file.name, kept.thumb_file.name, fresh.image_file.name,
                    fresh.thumb_file.name, mine.name}
    assert [e.entry_id for e in store.entries()] == [kept.entry_id]
    assert store.tidy() is None


def test_sidecar_fields_of_the_wrong_type_fall_back_one_by_one(tmp_path):
    import json

    store = HistoryStore(tmp_path)
    entry = store.add(np.zeros((8, 8, 3), np.uint8), PanelValues(), "p", "Toy")
    entry.meta_file.write_text(json.dumps({"values": {"prompt": "cat", "steps": 99999999999}, "parameters": 5,
                                           "created": "yesterday", "width": 10**30, "model_label": ["x"]}))
    (back,) = store.entries()
    assert (back.values.prompt, back.values.steps, back.parameters, back.created, back.width) == (
        "cat", 1000, "", 0.0, 0)
    entry.meta_file.write_text('{"created": 1' + "0" * 400 + "}")  # an int no float can hold
    assert store.entries()[0].created == 0.0


def test_an_image_not_the_size_its_sidecar_records_is_refused_before_decoding(tmp_path):
    import pytest

    from tests.fuzz_targets import png_header_only

    store = HistoryStore(tmp_path)
    entry = store.add(np.zeros((8, 8, 3), np.uint8), PanelValues(), "p", "Toy")
    entry.image_file.write_bytes(png_header_only(35, 787_645))  # decodes to 27M pixels of nothing
    (back,) = store.entries()
    with pytest.raises(ValueError, match="35x787645, but its history entry says 8x8"):
        back.load_image()
