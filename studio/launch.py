"""The ``diffusion-studio`` command and main.py: what must happen before Qt and torch load, then the window.

``--version`` prints the studio's facts (studio/version_report.py) without starting Qt; every other argument
goes to Qt as before (``-platform offscreen``, ``-style ...``).
"""

from __future__ import annotations

import argparse
import sys

from .version_report import VersionAction


def build_parser() -> argparse.ArgumentParser:
    # IMAGE is read by studio/ui/start_options.py once Qt has taken its own options (so not declared here,
    # where argparse would take Qt's option values, such as "offscreen", for it).
    parser = argparse.ArgumentParser(prog="diffusion-studio", allow_abbrev=False,
                                     usage="%(prog)s [--version] [IMAGE.png]",
                                     description="Diffusion Studio: the window. The command line is "
                                                 "diffusion-studio-cli (or python -m studio).",
                                     epilog="IMAGE.png opens as File → Open does (what the desktop's \"Open with\" "
                                            "runs). Other arguments go to Qt (for example -platform offscreen).")
    parser.add_argument("--version", action=VersionAction, device_setting=True)

    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    _args, qt_args = build_parser().parse_known_args(argv[1:])
    from .platform_check import ensure_qt_can_start

    ensure_qt_can_start()  # before PySide6 loads: a missing X11 library gets advice, not Qt's abort
    from .app import main as run_window

    return run_window([argv[0], *qt_args])
