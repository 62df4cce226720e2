"""ControlNet units on the command line: ``--controlnet NAME_OR_PATH --control-image PATH [...]``, repeatable.

The n-th --control-image, --control-weight, --control-start, --control-end and
--control-preprocessor belong to the n-th --controlnet (weights, starts, ends and
preprocessors may stop early: the rest take the defaults). Torch-free.
"""

from __future__ import annotations

import argparse

from .engine.control_preprocess import PREPROCESSORS
from .engine.request import ControlUnit

PER_UNIT = (("control_image", "--control-image"), ("control_weight", "--control-weight"),
            ("control_start", "--control-start"), ("control_end", "--control-end"),
            ("control_preprocessor", "--control-preprocessor"))


def add_controlnet_flags(gen: argparse.ArgumentParser) -> None:
    group = gen.add_argument_group("ControlNet (each flag repeats, one per unit, in the order of --controlnet)")
    group.add_argument("--controlnet", action="append", default=None, metavar="NAME_OR_PATH",
                       help="a ControlNet's name (as in models/ControlNet) or its file or folder")
    group.add_argument("--control-image", action="append", default=None, metavar="PATH",
                       help="the unit's control image (stretched to the output size)")
    group.add_argument("--control-weight", action="append", type=float, default=None, metavar="W",
                       help="how strongly the unit steers (default 1)")
    group.add_argument("--control-start", action="append", type=float, default=None, metavar="F",
                       help="fraction of the steps where it starts steering (default 0)")
    group.add_argument("--control-end", action="append", type=float, default=None, metavar="F",
                       help="fraction of the steps where it stops (default 1)")
    group.add_argument("--control-preprocessor", action="append", default=None, metavar="P",
                       help=f"what makes the control map from the image: {', '.join(PREPROCESSORS)} (default none)")


def control_units(args: argparse.Namespace, from_file: tuple[ControlUnit, ...] = ()) -> tuple[ControlUnit, ...]:
    """The units the flags describe; without --controlnet, a parameters file's units given --control-image
    images in order. ValueError (one line) for a count that does not match or an image that cannot be read."""
    from .io.png import load_image

    names = args.controlnet or []
    images = args.control_image or []
    if not names:
        for dest, flag in PER_UNIT[1:]:
            if getattr(args, dest):
                raise ValueError(f"{flag} needs a --controlnet to belong to")
        if not from_file:
            if images:
                raise ValueError("--control-image needs a --controlnet to belong to")
            return ()
        if len(images) != len(from_file):
            raise ValueError(f"the parameters file has {len(from_file)} ControlNet units: give one --control-image "
                             "for each, in order")
        return tuple(_with_image(u, load_image(p)) for u, p in zip(from_file, images, strict=True))
    if len(images) != len(names):
        raise ValueError(f"{len(names)} --controlnet but {len(images)} --control-image: each unit needs its image")
    for dest, flag in PER_UNIT[1:]:
        given = getattr(args, dest) or []
        if len(given) > len(names):
            raise ValueError(f"{len(given)} {flag} for {len(names)} --controlnet: at most one per unit")
    units = []
    for i, name in enumerate(names):
        def nth(dest: str, default, i=i):
            given = getattr(args, dest) or []
            return given[i] if i < len(given) else default

        units.append(ControlUnit(name, load_image(images[i]), nth("control_preprocessor", "none"),
                                 nth("control_weight", 1.0), nth("control_start", 0.0), nth("control_end", 1.0)))
    return tuple(units)


def _with_image(unit: ControlUnit, image) -> ControlUnit:
    from dataclasses import replace

    return replace(unit, image=image)
