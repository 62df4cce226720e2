"""X/Y/Z plot: axis values in AUTOMATIC1111's syntax, the cells and their order, the grid and its text."""

import random

import numpy as np
import pytest

from studio.io.plot_grid import compose_plot_grid
from studio.state.jobs import Job
from studio.state.panel_values import PanelValues
from studio.state.xyz_axes import MAX_CELLS, AxisChoices, AxisError, expand_range, parse_axis, split_values
from studio.state.xyz_plot import build_plot, grid_parameters, plot_jobs, read_plot_description
from studio.state.xyz_run import PlotRun

CHOICES = AxisChoices(samplers=(("euler", "Euler"), ("euler_a", "Euler a"), ("dpmpp_2m", "DPM++ 2M")),
                      spacings=("leading", "trailing", "linspace", "karras"),
                      models=(("embedded", "Embedded emoji model"), ("toy", "Toy shapes (built-in test model)")))


def values_of(type_name, text, **kw):
    return list(parse_axis("X", type_name, text, CHOICES, **kw).values)


@pytest.mark.parametrize(("type_name", "text", "expected"), [
    # The examples of AUTOMATIC1111's X/Y/Z plot documentation.
    ("Steps", "1-5", [1, 2, 3, 4, 5]),
    ("Steps", "1-5 (+2)", [1, 3, 5]),
    ("Steps", "10-5 (-3)", [10, 7]),
    ("CFG scale", "1-3 (+0.5)", [1, 1.5, 2, 2.5, 3]),
    ("Steps", "1-10 [5]", [1, 3, 5, 7, 10]),
    ("CFG scale", "0.0-1.0 [6]", [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ("Steps", "10, 20, 30", [10, 20, 30]),
    ("Steps", "8, 12-14, 20", [8, 12, 13, 14, 20]),
    ("Seed", "-5 - -3", None),  # below -1: refused (see test_out_of_range)
    ("CFG scale", "0-1 (+0.1)", [round(0.1 * i, 10) for i in range(11)]),  # no float drift past the end
    ("Steps", "5-1", [5, 4, 3, 2, 1]),  # AUTOMATIC1111 gives nothing here; counting down is what was meant
    ("Size", "64x48, 32", [(64, 48), (32, 32)]),
    ("Clip skip", "1-2", [1, 2]),
])
def test_values_follow_automatic1111s_syntax(type_name, text, expected):
    if expected is None:
        with pytest.raises(AxisError):
            values_of(type_name, text)
        return
    got = values_of(type_name, text)
    assert got == pytest.approx(expected) if type_name == "CFG scale" else got == expected


def test_counted_whole_numbers_are_cut_toward_zero_as_automatic1111_does():
    assert expand_range("-3-0 [3]", "int") == [-3, -1, 0]  # linspace gives -1.5, and int(-1.5) is -1
    assert expand_range("-3-0 [3]", "float") == [-3, -1.5, 0]
    assert expand_range("12", "int") is None


def test_quoted_values_keep_their_commas():
    assert split_values('dog, "cat, mouse", bird') == ["dog", "cat, mouse", "bird"]
    assert split_values('"a, b",c') == ["a, b", "c"]
    assert split_values("10, 20,") == ["10", "20"]  # a trailing comma is harmless
    assert split_values('"10, 20') == ["10, 20"]  # an unclosed quote runs to the end, as csv reads it


def test_prompt_search_and_replace_uses_the_first_value_as_the_search():
    axis = parse_axis("X", "Prompt S/R", "dog, cat, red fox", CHOICES, prompt="a dog in a park",
                      negative_prompt="blurry dog")
    assert [axis.changes(i, "a dog in a park", "blurry dog") for i in range(3)] == [
        {"prompt": "a dog in a park", "negative_prompt": "blurry dog"},
        {"prompt": "a cat in a park", "negative_prompt": "blurry cat"},
        {"prompt": "a red fox in a park", "negative_prompt": "blurry red fox"}]
    assert axis.labels == ("dog", "cat", "red fox")
    with pytest.raises(AxisError, match="did not find 'horse'"):
        parse_axis("Y", "Prompt S/R", "horse, cow", CHOICES, prompt="a dog")


def test_choices_match_by_key_label_or_a_unique_part():
    assert values_of("Sampler", "Euler a, dpm++ 2m, euler") == ["euler_a", "dpmpp_2m", "euler"]
    assert values_of("Schedule type", "Karras, leading") == ["karras", "leading"]
    assert values_of("Model", "toy, emoji") == ["toy", "embedded"]
    axis = parse_axis("X", "Sampler", "Euler a, DPM++ 2M", CHOICES)
    assert axis.labels == ("Euler a", "DPM++ 2M")
    with pytest.raises(AxisError, match="no samplers match 'LMS'.*Euler a"):
        values_of("Sampler", "Euler, LMS")
    with pytest.raises(AxisError, match="several samplers match 'eul'"):
        values_of("Sampler", "eul")


@pytest.mark.parametrize(("type_name", "text", "needle"), [
    ("Steps", "10, abc", "Steps: 'abc' is not a whole number"),
    ("Steps", "10, 12.5", "'12.5' is not a whole number"),
    ("Steps", "0, 10", "0 is outside 1 to 1000"),
    ("CFG scale", "1, nan", "'nan' is not a finite number"),
    ("Denoising strength", "0.5, 1.5", "1.5 is outside 0 to 1"),
    ("Size", "64x, 32", "'64x' is not a size"),
    ("Size", "4096x64", "must be 8 to 2048"),
    ("Steps", "1-1000000000", "gives 1000000000 values"),
    ("Steps", "1-10 (-1)", "never reaches 10"),
    ("Steps", "", "Steps has no values"),
    ("Weirdness", "1", "unknown axis type 'Weirdness'"),
])
def test_bad_values_name_the_axis_and_the_value(type_name, text, needle):
    with pytest.raises(AxisError) as info:
        parse_axis("Y", type_name, text, CHOICES)
    message = str(info.value)
    assert message.startswith("Y axis: ") and needle in message


def test_seed_minus_one_draws_a_seed_that_the_text_records():
    axis = parse_axis("X", "Seed", "1, -1", CHOICES, rng=random.Random(3))
    assert axis.values[0] == 1 and axis.values[1] != -1
    plot = build_plot([("Seed", "1, -1")], CHOICES, rng=random.Random(3))
    assert ("Fixed X Values", f"1, {axis.values[1]}") in plot.description()


def test_cells_run_x_fastest_and_a_model_axis_outermost():
    plot = build_plot([("Steps", "10, 20, 30"), ("CFG scale", "1, 3"), ("Sampler", "Euler, Euler a")], CHOICES)
    assert plot.shape == (3, 2, 2) and plot.cell_count == 12
    cells = plot.cells()
    assert [c.position for c in cells[:4]] == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (0, 1, 0)]
    assert [c.index for c in cells] == list(range(12))
    plot = build_plot([("Model", "toy, emoji"), ("Steps", "3, 4, 5")], CHOICES)
    assert [c.position for c in plot.cells()[:4]] == [(0, 0, 0), (0, 1, 0), (0, 2, 0), (1, 0, 0)]
    assert sorted(c.index for c in plot.cells()) == list(range(6))


def test_the_number_of_cells_is_capped_with_a_clear_message():
    with pytest.raises(AxisError, match=f"11 x 10 x 1 = 110 images; a plot holds at most {MAX_CELLS}"):
        build_plot([("Steps", "1-11"), ("Seed", "1-10")], CHOICES)
    with pytest.raises(AxisError, match="megapixels"):
        build_plot([("Steps", "1-20"), ("Size", "2048")], CHOICES)
    with pytest.raises(AxisError, match="Y axis: Steps is already the X axis"):
        build_plot([("Steps", "1, 2"), ("Steps", "3")], CHOICES)
    with pytest.raises(AxisError, match="pick a setting"):
        build_plot([("Nothing", ""), ("", "")], CHOICES)


def test_plot_jobs_carry_each_cells_settings_and_one_settled_seed():
    plot = build_plot([("Steps", "3, 5"), ("Size", "32, 64x32")], CHOICES)
    base = PanelValues(prompt="red heart", seed_mode="random", batch_count=4)
    image = np.zeros((64, 64, 3), np.uint8)
    counter = iter(range(100, 200))
    jobs = plot_jobs(plot, base, image, np.ones((64, 64), np.float32), None, lambda: next(counter))
    assert [j.job_id for j, _ in jobs] == [100, 101, 102, 103]
    got = [(j.values.steps, j.values.width, j.values.height) for j, _ in jobs]
    assert got == [(3, 32, 32), (5, 32, 32), (3, 64, 32), (5, 64, 32)]
    assert len({j.values.seed for j, _ in jobs}) == 1 and all(j.values.batch_count == 1 for j, _ in jobs)
    assert jobs[2][0].init_image.shape == (32, 64, 3) and jobs[2][0].mask.shape == (32, 64)  # fitted per cell
    assert jobs[1][0].label.endswith("[2/4]")


def test_variation_axes_set_the_variation_fields_of_each_cell():
    # AUTOMATIC1111's "Var. seed" / "Var. strength" axes: one seed, its variations side by side.
    plot = build_plot([("Var. strength", "0, 0.5, 1"), ("Var. seed", "7, 8")], CHOICES)
    base = PanelValues(prompt="red heart", seed=3, seed_mode="fixed")
    jobs = plot_jobs(plot, base, None, None, None, iter(range(10)).__next__)
    got = [(j.values.seed, j.values.variation_seed, j.values.variation_strength) for j, _ in jobs]
    assert got == [(3, 7, 0.0), (3, 7, 0.5), (3, 7, 1.0), (3, 8, 0.0), (3, 8, 0.5), (3, 8, 1.0)]
    with pytest.raises(AxisError, match="Var. strength"):
        build_plot([("Var. strength", "1.5")], CHOICES)


def test_the_grid_text_reads_back_as_the_plot():
    plot = build_plot([("Steps", "10,20"), ("Nothing", ""), ("Prompt S/R", 'cat, "dog, big"')], CHOICES,
                      prompt="a cat")
    cell = "a cat\nSteps: 10, Sampler: Euler, CFG scale: 3, Seed: 1, Size: 64x64"
    text = grid_parameters(cell, plot)
    assert text.startswith(cell + ", Script: X/Y/Z plot, X Type: Steps, X Values: \"10,20\"")
    assert read_plot_description(text) == [("Steps", "10,20"), ("", ""), ("Prompt S/R", 'cat, "dog, big"')]
    rebuilt = build_plot(read_plot_description(text), CHOICES, prompt="a cat")
    assert rebuilt.shape == plot.shape and rebuilt.axes[2].values == ("cat", "dog, big")
    assert read_plot_description(cell) is None


def test_the_grid_keeps_each_cells_pixels_and_labels_around_them():
    rng = np.random.default_rng(0)
    cells = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(12)]
    cells[5] = None  # a failed cell is left blank
    grid = compose_plot_grid(cells, (3, 2, 2), ("Steps: 10", "Steps: 20", "Steps: 30"), ("CFG 1", "CFG 3"),
                             ("Euler", "Euler a"))
    height, width = grid.image.shape[:2]
    assert grid.boxes[5] is None
    lefts = sorted({b[0] for b in grid.boxes if b})
    assert len(lefts) == 6 and lefts[1] - lefts[0] == 48  # columns touch, as in AUTOMATIC1111
    first = grid.boxes[0]
    assert first[0] > 0 and first[1] > 0  # labels to the left and above
    assert width > 2 * 3 * 48 and height > 2 * 32
    for i, cell in enumerate(cells):
        if cell is not None:
            x, y, w, h = grid.boxes[i]
            assert np.array_equal(grid.image[y:y + h, x:x + w], cell)
    # Z sub-grids sit side by side at the same height.
    assert grid.boxes[6][1] == grid.boxes[0][1] and grid.boxes[6][0] > grid.boxes[2][0] + 48


def test_a_grid_without_labels_is_just_the_cells():
    cells = [np.full((16, 16, 3), v, np.uint8) for v in (10, 20)]
    grid = compose_plot_grid(cells, (2, 1, 1))
    assert grid.image.shape == (16, 32, 3) and grid.boxes == ((0, 0, 16, 16), (16, 0, 16, 16))


def test_a_size_axis_centres_smaller_cells_in_their_column():
    cells = [np.full((16, 16, 3), 10, np.uint8), np.full((32, 24, 3), 20, np.uint8)]
    grid = compose_plot_grid(cells, (1, 2, 1), (), ("16", "24x32"))
    (x0, _, w0, _), (x1, _, w1, _) = grid.boxes
    assert (w0, w1) == (16, 24) and x0 == x1 + 4


def test_a_plot_run_collects_cells_and_gives_up_on_cancel():
    plot = build_plot([("Steps", "3, 4, 5")], CHOICES)
    jobs = plot_jobs(plot, PanelValues(seed_mode="fixed"), None, None, None, iter(range(1, 9)).__next__)
    run = PlotRun(plot, jobs)
    image = np.zeros((8, 8, 3), np.uint8)
    run.take_result(2, image, jobs[1][0].values, "b\nSteps: 4", "Toy")
    run.take_failure(1, cancelled=False)
    assert not run.done and run.failed == 1
    run.take_result(3, image, jobs[2][0].values, "c\nSteps: 5", "Toy")
    assert run.done and not run.cancelled and run.images[0] is None and run.images[1] is image
    entry = run.grid_entry()
    assert entry.values.steps == 4 and entry.parameters.startswith("b\nSteps: 4, Script: X/Y/Z plot")
    other = PlotRun(plot, plot_jobs(plot, PanelValues(), None, None, None, iter(range(10, 19)).__next__))
    other.drop_missing([11])  # 10 and 12 vanished from the queue: a cancel
    assert other.cancelled and not other.done and not other.owns(1)
    other.take_failure(11, cancelled=True)
    assert other.done and other.grid_entry() is None
    assert isinstance(jobs[0][0], Job)
