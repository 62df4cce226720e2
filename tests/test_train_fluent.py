"""Fluent emoji for training: Iconify SVG packages drawn on white and joined to emoji by code point."""

import json

from studio.train.svg_render import IconSet

# A red square in the left half of a 32x32 box; the right half is left transparent.
LEFT_RED = '<path fill="#ff0000" d="M0 0h16v32H0z"/>'


def _package(folder, icons, chars, aliases=None):
    folder.mkdir()
    (folder / "icons.json").write_text(json.dumps(
        {"prefix": "t", "width": 32, "height": 32, "icons": icons, "aliases": aliases or {}}))
    (folder / "chars.json").write_text(json.dumps(chars))
    return folder


def test_an_icon_is_drawn_at_64_px_on_white_and_an_alias_mirrors_it(tmp_path):
    flat = _package(tmp_path / "flat", {"left": {"body": LEFT_RED}}, {"1f44b": "left", "1f44c-1f3fb": "right"},
                    aliases={"right": {"parent": "left", "hFlip": True}})
    icons = IconSet(flat)
    assert icons.name_for("1F44B-FE0F") == "left"  # upper case and FE0F as emoji-datasource writes them
    assert icons.name_for("1F44C-1F3FB") == "right" and icons.name_for("1f600") is None
    left = icons.render("left")
    assert left.shape == (64, 64, 3) and left.dtype.name == "uint8"
    assert left[32, 8].tolist() == [255, 0, 0] and left[32, 56].tolist() == [255, 255, 255]
    right = icons.render("right")
    assert right[32, 8].tolist() == [255, 255, 255] and right[32, 56].tolist() == [255, 0, 0]


def test_a_set_without_its_own_code_points_borrows_the_names_of_its_sibling(tmp_path):
    flat = _package(tmp_path / "flat", {"heart": {"body": LEFT_RED}, "cat": {"body": LEFT_RED}},
                    {"2764": "heart", "1f408": "cat"})
    colour = _package(tmp_path / "colour", {"heart": {"body": LEFT_RED}}, {})
    assert IconSet(colour).name_for("2764") is None
    borrowed = IconSet(colour, chars_from=flat)
    assert borrowed.name_for("2764-FE0F") == "heart"
    assert borrowed.name_for("1f408") is None  # a name the colour set does not draw is not offered
