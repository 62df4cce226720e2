"""``python -m studio xyz``: a labelled grid PNG whose cells are exactly the single runs."""

import numpy as np
from PIL import Image

from studio.cli import main
from studio.io.png import read_parameters
from studio.state.xyz_plot import read_plot_description


def test_xyz_writes_a_grid_whose_cells_are_the_single_runs(tmp_path, capsys):
    out, cells = tmp_path / "grid.png", tmp_path / "cells"
    code = main(["xyz", "--model", "toy", "--x", "Steps: 3,5", "--y", "Sampler: Euler, Euler a",
                 "--prompt", "red circle", "--seed", "7", "--width", "24", "--height", "16", "--out", str(out),
                 "--cells-dir", str(cells), "--quiet"])
    assert code == 0 and "2x2x1 cells" in capsys.readouterr().out
    text = read_parameters(out)
    assert read_plot_description(text) == [("Steps", "3,5"), ("Sampler", "Euler, Euler a")]
    assert text.startswith("red circle\nSteps: 3, Sampler: Euler,")
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape[0] > 2 * 16 and grid.shape[1] > 2 * 24  # the cells and their labels
    single = tmp_path / "single.png"
    assert main(["generate", "--model", "toy", "--prompt", "red circle", "--seed", "7", "--steps", "5",
                 "--sampler", "euler_a", "--width", "24", "--height", "16", "--out", str(single), "--quiet"]) == 0
    expected = np.asarray(Image.open(single).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(cells / "cell-003.png").convert("RGB")), expected)
    assert "Steps: 5, Sampler: Euler a" in read_parameters(cells / "cell-003.png")
    # The bottom-right cell of the grid holds those pixels, unscaled.
    assert np.array_equal(grid[-16:, -24:], expected)


def test_xyz_axis_mistakes_are_one_line_messages(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["xyz", "--model", "toy", "--x", "Steps: 3, lots", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: X axis: Steps: 'lots' is not a whole number"
    assert main(["xyz", "--model", "toy", "--x", "Steps 3", "--out", str(out)]) == 2
    assert "write the setting, a colon and the values" in capsys.readouterr().err
    assert main(["xyz", "--model", "toy", "--x", "Steps: 1-11", "--y", "Seed: 1-10", "--out", str(out)]) == 2
    assert "110 images; a plot holds at most 100" in capsys.readouterr().err
    assert not out.exists()


def test_generate_batch_count_writes_the_next_seeds_each_as_its_single_run(tmp_path, capsys):
    flags = ["--model", "toy", "--prompt", "red circle", "--steps", "3", "--width", "24", "--height", "16", "--quiet"]
    assert main(["generate", *flags, "--seed", "7", "--batch-count", "3", "--out", str(tmp_path / "b.png")]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == \
        [str(tmp_path / f"b-{seed}.png") for seed in (7, 8, 9)]
    assert main(["generate", *flags, "--seed", "8", "--out", str(tmp_path / "single.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b-8.png")), np.asarray(Image.open(tmp_path / "single.png")))
    assert "Seed: 8," in read_parameters(tmp_path / "b-8.png")
    assert main(["generate", *flags, "--batch-count", "0"]) == 2
    assert "--batch-count 0: give 1 to 64" in capsys.readouterr().err
    assert main(["xyz", *flags, "--x", "Steps: 3,4", "--batch-count", "2", "--out", str(tmp_path / "g.png")]) == 2
    assert "a plot sweeps seeds with a Seed axis" in capsys.readouterr().err
