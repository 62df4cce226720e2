"""A missing X11 library is named, with the command that installs it, before Qt can abort."""

import os
import subprocess
import sys
from pathlib import Path

from studio.platform_check import EXIT_MISSING_LIBRARIES, install_advice, uses_xcb

ROOT = Path(__file__).resolve().parents[1]


def fake_ldd(folder: Path, missing: list[str]) -> Path:
    """An ``ldd`` that reports ``missing`` as not found, as the real one does on a fresh Debian."""
    folder.mkdir()
    script = folder / "ldd"
    lines = "".join(f"\\t{name} => not found\\n" for name in missing)
    script.write_text(f"#!/bin/sh\nprintf '\\tlibQt6Gui.so.6 => /somewhere/libQt6Gui.so.6 (0x1)\\n{lines}'\n")
    script.chmod(0o755)
    return folder


def launch(tmp_path: Path, missing: list[str], platform: str) -> subprocess.CompletedProcess:
    bin_dir = fake_ldd(tmp_path / "bin", missing)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", QT_QPA_PLATFORM=platform,
               DISPLAY=":4242", DIFFUSION_STUDIO_HOME=str(tmp_path / "home"))
    return subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_main_names_the_missing_libraries_and_the_command_that_installs_them(tmp_path):
    run = launch(tmp_path, ["libxcb-cursor.so.0", "libxcb-icccm.so.4"], "xcb")
    assert run.returncode == EXIT_MISSING_LIBRARIES
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4" in run.stderr
    assert "libxcb-cursor.so.0" in run.stderr
    assert "qt.qpa" not in run.stderr and "Aborted" not in run.stderr and "Traceback" not in run.stderr


def test_other_platforms_are_not_checked():
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen"}) and not uses_xcb({"QT_QPA_PLATFORM": "wayland"})
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}) == sys.platform.startswith("linux")
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"})


def test_a_library_without_a_known_package_is_still_named():
    advice = install_advice(["libxcb-cursor.so.0", "libodd.so.3"])
    assert "apt-get install -y libxcb-cursor0\n" in advice and "provide libodd.so.3" in advice
