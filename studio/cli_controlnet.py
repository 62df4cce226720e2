"""ControlNet units on the command line: ``--controlnet NAME_OR_PATH --control-image PATH [...]``, repeatable.

Each --control-image, --control-weight, --control-start, --control-end and
--control-preprocessor belongs to the --controlnet before it, so written in order the
n-th of each belongs to the n-th unit; a unit without a weight, start, end or
preprocessor takes the default. Torch-free.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from .engine.control_preprocess import PREPROCESSORS
from .engine.request import ControlUnit

PER_UNIT = (("control_image", "--control-image"), ("control_weight", "--control-weight"),
            ("control_start", "--control-start"), ("control_end", "--control-end"),
            ("control_preprocessor", "--control-preprocessor"))


class _UnitFlag(argparse.Action):
    """Keep (index of the --controlnet given before this flag, value): a flag belongs to the unit it follows."""

    def __call__(self, parser, namespace, values, option_string=None):
        owner = len(getattr(namespace, "controlnet", None) or []) - 1
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), (owner, values)])


def add_controlnet_flags(gen: argparse.ArgumentParser) -> None:
    group = gen.add_argument_group("ControlNet (repeat --controlnet for more units; each flag after it belongs to it)")
    group.add_argument("--controlnet", action="append", default=None, metavar="NAME_OR_PATH",
                       help="a ControlNet's name (as in models/ControlNet) or its file or folder")
    group.add_argument("--control-image", action=_UnitFlag, default=None, metavar="PATH",
                       help="the unit's control image (stretched to the output size)")
    group.add_argument("--control-weight", action=_UnitFlag, type=float, default=None, metavar="W",
                       help="how strongly the unit steers (default 1)")
    group.add_argument("--control-start", action=_UnitFlag, type=float, default=None, metavar="F",
                       help="fraction of the steps where it starts steering (default 0)")
    group.add_argument("--control-end", action=_UnitFlag, type=float, default=None, metavar="F",
                       help="fraction of the steps where it stops (default 1)")
    group.add_argument("--control-preprocessor", action=_UnitFlag, default=None, metavar="P",
                       help=f"what makes the control map from the image: {', '.join(PREPROCESSORS)} (default none)")


def control_units(args: argparse.Namespace, from_file: tuple[ControlUnit, ...] = ()) -> tuple[ControlUnit, ...]:
    """The units the flags describe; without --controlnet, a parameters file's units given --control-image
    images in order. ValueError (one line) for a flag without its unit, a unit without its image, or an
    image that cannot be read."""
    from .io.png import load_image

    names = args.controlnet or []
    images = [value for _, value in args.control_image or []]
    if not names:
        for dest, flag in PER_UNIT[1:]:
            if getattr(args, dest):
                raise ValueError(f"{flag} needs a --controlnet before it, the unit it belongs to")
        if not from_file:
            if images:
                raise ValueError("--control-image needs a --controlnet before it, the unit it belongs to")
            return ()
        if len(images) != len(from_file):
            raise ValueError(f"the parameters file has {len(from_file)} ControlNet units: give one --control-image "
                             "for each, in order")
        return tuple(replace(u, image=load_image(p)) for u, p in zip(from_file, images, strict=True))
    per_unit: dict[str, dict[int, object]] = {}
    for dest, flag in PER_UNIT:
        values: dict[int, object] = {}
        for owner, value in getattr(args, dest) or []:
            if owner < 0:
                raise ValueError(f"{flag} needs a --controlnet before it, the unit it belongs to")
            if owner in values:
                raise ValueError(f"--controlnet {names[owner]} has two {flag}: give one per unit")
            values[owner] = value
        per_unit[dest] = values
    units = []
    for i, name in enumerate(names):
        if i not in per_unit["control_image"]:
            raise ValueError(f"--controlnet {name} has no --control-image: give one after it")
        image = load_image(per_unit["control_image"][i])
        units.append(ControlUnit(name, image, per_unit["control_preprocessor"].get(i, "none"),
                                 per_unit["control_weight"].get(i, 1.0), per_unit["control_start"].get(i, 0.0),
                                 per_unit["control_end"].get(i, 1.0)))
    return tuple(units)
