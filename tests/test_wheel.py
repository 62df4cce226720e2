"""The package as pip installs it: a wheel built from this tree, installed into a fresh venv that cannot see the
source tree, runs both commands and the window on the embedded model, offline, from a folder that is not the repo.

The venv reuses this environment's torch and the other dependencies (a ``.pth`` line naming their site-packages:
``.pth`` files in that folder are not run from there, so the editable install of the checkout stays out); the
studio itself must come from the wheel. About 30 s: one wheel build, one install, three runs that load torch.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import studio
from studio.io.png import read_parameters

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180
GENERATE = ["generate", "--prompt", "red heart", "--steps", "4", "--seed", "1", "--quiet"]

WINDOW = """
import sys, tempfile, time
from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication
import studio
from studio.app import create_studio, end_process
from studio.state.paths import StudioPaths

app = QApplication([])
window_studio = create_studio(StudioPaths.under(tempfile.mkdtemp()), app)
window_studio.window.show()
catalogs = []
window_studio.engine.ready.connect(catalogs.append)
window_studio.start_engine()
deadline = time.monotonic() + 120
while not catalogs and time.monotonic() < deadline:
    app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 100)
print(studio.__file__)
print(window_studio.window.isVisible(), bool(app.styleSheet()))
print(catalogs[0].default_model if catalogs else "not ready", window_studio.window.panel.values().model)
window_studio.controller.shutdown()
end_process(0)  # as the app ends: not waiting for the engine thread's model load
"""


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def run(args: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def outside_env(home: Path) -> dict:
    """This environment without the checkout on the path, offline, with the studio's files in ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return env | {"DIFFUSION_STUDIO_HOME": str(home), "PYTHONNOUSERSITE": "1", "HF_HUB_OFFLINE": "1",
                  "TRANSFORMERS_OFFLINE": "1", "QT_QPA_PLATFORM": "offscreen"}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """(wheel, venv, a working folder outside the repo, the environment to run in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = outside_env(tmp / "home")
    # Built from a copy: setuptools' build/ folder keeps files deleted since, and the checkout stays clean.
    src = tmp / "src"
    shutil.copytree(ROOT / "studio", src / "studio", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", tmp / "dist", src], tmp, env)
    (wheel,) = (tmp / "dist").glob("diffusion_studio-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    python = bin_dir(venv) / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env)
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(purelib.stdout.strip()) / "_reused_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    # --ignore-installed: pip sees this environment's editable install too and must neither skip nor remove it.
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel], tmp, env)
    work = tmp / "work"
    work.mkdir()
    return wheel, venv, work, env


def test_the_wheel_carries_every_file_of_the_package(package):
    wheel, *_ = package
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "studio"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files = tracked or [p.relative_to(ROOT).as_posix() for p in (ROOT / "studio").rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts]
    missing = [f for f in files if f not in names]
    assert not missing, f"left out of the wheel: {missing[:20]}"
    for needed in ("studio/resources/embedded/base.safetensors", "studio/resources/embedded/NOTICE",
                   "studio/resources/embedded/MODEL_CARD.md", "studio/resources/style/dark.qss",
                   "studio/resources/sd_configs/clip_tokenizer/merges.txt"):
        assert needed in names
    assert zipfile.ZipFile(wheel).getinfo("studio/resources/embedded/base.safetensors").file_size > 10_000_000


def test_the_cli_generates_with_the_embedded_model_from_the_installed_wheel(package):
    _, venv, work, env = package
    done = run([bin_dir(venv) / "diffusion-studio-cli", *GENERATE, "--out", "x.png"], work, env)
    assert "wrote x.png (64x64, seed 1" in done.stdout
    parameters = read_parameters(work / "x.png")
    assert parameters.startswith("red heart\nSteps: 4, ")
    assert "Seed: 1," in parameters and "Size: 64x64" in parameters and "Studio model: embedded" in parameters



def test_the_window_command_tells_its_version_from_the_installed_package(package):
    _, venv, work, env = package
    site = str(venv)
    window = run([bin_dir(venv) / "diffusion-studio", "--version"], work, env | {"QT_QPA_PLATFORM": "xcb",
                                                                                   "DISPLAY": ":4242"})
    facts = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in window.stdout.splitlines())}
    assert facts["Diffusion Studio"] == studio.__version__  # from the installed metadata: no "source checkout"
    assert facts["program"].startswith(site) and facts["embedded model"].startswith(site)
    assert facts["torch"] and facts["CUDA"]
    assert facts["device"].endswith("(Settings → device: auto)")  # the window's report, without Qt (no display)
    assert facts["settings"] == str(Path(env["DIFFUSION_STUDIO_HOME"]) / "config" / "settings.json")


def test_the_window_starts_from_the_installed_wheel_with_the_embedded_model(package):
    _, venv, work, env = package
    lines = run([bin_dir(venv) / "python", "-c", WINDOW], work, env).stdout.splitlines()
    assert lines[0].startswith(str(venv))  # the wheel's studio, not the checkout's
    assert lines[1] == "True True"  # shown, themed from the package's resources
    assert lines[2] == "embedded embedded"
