"""``--version`` of both commands: the About box's facts as text, with torch loaded to tell the device.

Nothing is written: the settings are only read (for the window's device and the model folders).
"""

from __future__ import annotations

import argparse
from typing import Any

from .state.about import TorchFacts, about_facts, about_text, device_name, saved_model_folders, saved_settings_field
from .state.paths import StudioPaths


def torch_facts(device_setting: str | None) -> TorchFacts:
    """``device_setting``: the window's Settings device ("auto", "cuda", ...); None for the command line, whose
    ``generate --device`` defaults to the CPU."""
    import torch

    from .engine.devices import cuda_status, pick_device

    best = pick_device("auto").type
    if device_setting is None:
        device = device_name("cpu")
        if best != "cpu":
            device += f" (generate's default; --device auto runs on {device_name(best)})"
    else:
        device = device_name(pick_device(device_setting).type) + f" (Settings → device: {device_setting})"
    return TorchFacts(str(torch.__version__), device, cuda_status())


def version_report(device_setting: str | None) -> str:
    paths = StudioPaths.default()
    return about_text(about_facts(paths, saved_model_folders(paths.settings_file), torch_facts(device_setting)))


def saved_device(paths: StudioPaths) -> str:
    from .state.settings import DEVICES

    device = saved_settings_field(paths.settings_file, "device")
    return device if device in DEVICES else "auto"


class VersionAction(argparse.Action):
    """``--version``: print the report and exit, before any other argument is looked at (as argparse's own)."""

    def __init__(self, option_strings: list[str], dest: str, device_setting: bool = False, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version, torch, the device and where files live, then exit")
        self.device_setting = device_setting  # the window: report the device its Settings pick

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setting = saved_device(StudioPaths.default()) if self.device_setting else None
        print(version_report(setting))
        parser.exit(0)
