"""Whatever is typed into an X/Y/Z axis, the answer is a plot or an AxisError naming the axis; never a crash."""

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.state.xyz_axes import AXIS_KINDS, MAX_CELLS, AxisChoices, AxisError
from studio.state.xyz_plot import build_plot, grid_parameters, read_plot_description

CHOICES = AxisChoices(samplers=(("euler", "Euler"), ("euler_a", "Euler a")), spacings=("leading", "karras"),
                      models=(("toy", "Toy"),))
# Mostly the characters the syntax is made of, so ranges, steps, counts and quotes are often almost right.
syntax = st.text(st.sampled_from(list("0123456789-+.,()[] \"x\n")) | st.characters(), max_size=40)
types = st.sampled_from([k.name for k in AXIS_KINDS] + ["Nothing", "", "Denoising", "bogus"])


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(types, syntax), min_size=1, max_size=3), prompt=st.text(max_size=20))
def test_any_axis_text_is_a_plot_or_a_readable_error(rows, prompt):
    try:
        plot = build_plot(rows, CHOICES, prompt=prompt)
    except AxisError as exc:
        assert str(exc)[:1] in "XYZ" and " axis: " in str(exc)
        return
    assert 1 <= plot.cell_count <= MAX_CELLS and len(plot.cells()) == plot.cell_count
    read = read_plot_description(grid_parameters("p\nSteps: 1, Seed: 2, Size: 8x8", plot))
    assert build_plot(read, CHOICES, prompt=prompt).shape == plot.shape
