"""Before Qt starts: the system libraries its X11 (xcb) platform plugin needs.

Without them Qt aborts while creating the application, with a text about platform plugins that does not
say what to install (a fresh Debian lacks libxcb-cursor0). This asks the dynamic loader (``ldd``) which
libraries PySide6's xcb plugin cannot find, and names the packages that bring them. Imports neither Qt
nor torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import TextIO

EXIT_MISSING_LIBRARIES = 2

# Debian/Ubuntu packages for the libraries Qt 6's xcb plugin loads (soname -> package).
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def uses_xcb(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether Qt will start on X11 here: Linux, and no other platform asked for (Wayland sessions included)."""
    if not sys.platform.startswith("linux"):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(";")[0].split(":")[0] == "xcb"
    return not (environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland")


def xcb_plugin() -> Path | None:
    spec = find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.exists() else None


def missing_libraries(plugin: Path) -> list[str]:
    """The libraries the loader cannot find for ``plugin`` (its own and those of what it loads)."""
    ldd = shutil.which("ldd")
    if ldd is None:  # not a glibc system: Qt's own message will have to do
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(out)))


def install_advice(missing: list[str]) -> str:
    packages = sorted({DEBIAN_PACKAGES[name] for name in missing if name in DEBIAN_PACKAGES})
    unknown = [name for name in missing if name not in DEBIAN_PACKAGES]
    lines = [f"Diffusion Studio cannot open its window: Qt's X11 support needs {', '.join(missing)}, "
             "which this system does not have."]
    if packages:
        them = "it" if len(packages) == 1 else "them"
        lines.append(f"On Debian or Ubuntu install {them} with:\n\n    sudo apt-get install -y {' '.join(packages)}\n")
    if unknown:
        lines.append(f"Install the packages that provide {', '.join(unknown)} with your system's package manager.")
    lines.append("(The command line, python -m studio, needs none of them.)")
    return "\n".join(lines)


def ensure_qt_can_start(stderr: TextIO | None = None) -> None:
    """Exit with EXIT_MISSING_LIBRARIES and install advice when Qt's xcb plugin would not load."""
    if not uses_xcb():
        return
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        print(install_advice(missing), file=stderr or sys.stderr)
        raise SystemExit(EXIT_MISSING_LIBRARIES)
