"""Importing spandrel (the upscaler architectures) even where torchvision cannot load.

spandrel imports torchvision only for two architectures that are not upscalers (LaMa inpainting and
RestoreFormer face restoration: ``rotate``, ``InterpolationMode``, ``normalize``). The torchvision
wheels the registry serves for Linux are CUDA builds; beside a CPU build of torch they fail on import
("operator torchvision::nms does not exist"). So when torchvision is missing or broken, spandrel is
imported with a stand-in that provides those three names and refuses to run, and the stand-in is
taken out of ``sys.modules`` again, so no other library ever sees it.
"""

from __future__ import annotations

import enum
import sys
import types
from typing import Any

from ..models.errors import ModelLoadError

INSTALL_HINT = ("upscaler models need the spandrel package: .venv/bin/pip install --no-deps spandrel==0.4.2 "
                "einops (or ./scripts/setup_env.sh); Lanczos works without it")


class SpandrelMissing(ModelLoadError):
    """spandrel is not installed: the message says what to install."""


_spandrel: Any = None


def import_spandrel() -> Any:
    """The spandrel module; SpandrelMissing (naming the install command) when it is not installed."""
    global _spandrel
    if _spandrel is None:
        _spandrel = _import()
    return _spandrel


def _import() -> Any:
    try:
        import torchvision.transforms.functional  # noqa: F401
        torchvision_works = True
    except Exception:  # noqa: BLE001 - missing (ImportError) or a CUDA build beside CPU torch (RuntimeError)
        torchvision_works = False
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]  # a half-imported package must not stay behind
    installed = {} if torchvision_works else _stand_in()
    sys.modules.update(installed)
    try:
        import spandrel
    except ImportError as exc:
        raise SpandrelMissing(f"{INSTALL_HINT} ({exc})") from None
    finally:
        for name, module in installed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return spandrel


class _InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _needs_torchvision(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("this model architecture needs torchvision, which cannot be imported here")


def _stand_in() -> dict[str, types.ModuleType]:
    """Modules named torchvision, torchvision.transforms and torchvision.transforms.functional with the three
    names spandrel imports; calling them says torchvision is needed (no upscaler calls them)."""
    root, transforms, functional = (types.ModuleType(n) for n in
                                    ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
    functional.InterpolationMode = _InterpolationMode  # type: ignore[attr-defined]
    functional.rotate = _needs_torchvision  # type: ignore[attr-defined]
    functional.normalize = _needs_torchvision  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    return {"torchvision": root, "torchvision.transforms": transforms, "torchvision.transforms.functional": functional}
