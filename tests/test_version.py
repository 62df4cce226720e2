"""--version on both commands, the CUDA explanation, the version's source and what every entry does first."""

import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError

import pytest
import torch

import studio.app
import studio.version
from studio import launch
from studio.cli import main as cli_main
from studio.engine import devices
from studio.resource_files import resource_dir
from studio.worker.engine_session import EngineSession


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write_settings(home, **fields):
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps(fields))


def report(lines: str) -> dict[str, str]:
    return {label.strip(): value.strip() for label, value in (line.split(":", 1) for line in lines.splitlines())}


def test_cli_version_tells_version_torch_device_and_where_files_live(home, capsys):
    write_settings(home, model_folders=["/models/sd", 7])
    with pytest.raises(SystemExit) as ended:
        cli_main(["--version"])
    assert ended.value.code == 0
    facts = report(capsys.readouterr().out)
    assert facts["Diffusion Studio"] == studio.version.studio_version()
    assert facts["torch"] == str(torch.__version__)
    assert facts["device"].startswith("CPU")  # generate's --device default
    assert facts["CUDA"] == devices.cuda_status()
    assert facts["settings"] == str(home / "config" / "settings.json")
    assert facts["history"] == str(home / "data" / "history")
    assert facts["embedded model"] == str(resource_dir("embedded"))
    assert facts["model folders"] == "/models/sd"  # what cannot be a folder name is left out


def test_window_version_reports_the_settings_device_without_starting_qt(home, capsys, monkeypatch):
    write_settings(home, device="cuda")
    monkeypatch.setattr(studio.app, "main", lambda argv: pytest.fail("the window started"))
    with pytest.raises(SystemExit):
        launch.main(["diffusion-studio", "--version"])
    device = report(capsys.readouterr().out)["device"]
    expected = "CUDA (NVIDIA GPU)" if torch.cuda.is_available() else "CPU"
    assert device == f"{expected} (Settings → device: cuda)"


def test_window_version_leaves_a_bad_settings_file_alone(home, capsys):
    write_settings(home)
    (home / "config" / "settings.json").write_text("{not json")
    with pytest.raises(SystemExit):
        launch.main(["diffusion-studio", "--version"])
    assert "Settings → device: auto" in capsys.readouterr().out
    assert os.listdir(home / "config") == ["settings.json"]  # not set aside: --version only looks


def test_window_arguments_other_than_version_go_to_qt(monkeypatch):
    started = []
    monkeypatch.setattr(studio.app, "main", lambda argv: started.append(argv) or 0)
    assert launch.main(["diffusion-studio", "-platform", "offscreen", "-style", "fusion"]) == 0
    assert started == [["diffusion-studio", "-platform", "offscreen", "-style", "fusion"]]


def test_importing_the_package_sets_the_omp_wait_policy_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, sys, studio.cli, studio.launch; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["PASSIVE", "False"], out.stderr


def test_a_checkout_that_is_not_installed_says_so(monkeypatch):
    def not_installed(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(studio.version, "version", not_installed)
    assert studio.version.studio_version() == f"{studio.__version__} (source checkout, not installed)"
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as PyInstaller sets it
    assert studio.version.studio_version() == f"{studio.__version__} (bundle)"


def test_cpu_build_of_torch_is_named_as_the_reason(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(devices.sys, "platform", "linux")
    status = devices.cuda_status()
    assert status.startswith("not found:") and "CPU-only build" in status and "docs/install.md" in status


def test_cuda_build_without_a_driver_says_what_cuda_said(monkeypatch):
    def no_driver():
        raise RuntimeError("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU\nmore")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "init", no_driver)
    monkeypatch.setattr(devices.sys, "platform", "linux")
    status = devices.cuda_status()
    assert "built for CUDA 12.8" in status
    assert status.endswith("CUDA could not start: Found no NVIDIA driver on your system. Please check that you "
                           "have an NVIDIA GPU")


def test_cuda_build_with_no_visible_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(devices.sys, "platform", "linux")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devices.cuda_status().endswith("no CUDA device is visible (CUDA_VISIBLE_DEVICES='')")


def test_a_found_gpu_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H200")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.version, "hip", None)
    assert devices.cuda_status() == "found: NVIDIA H200 and 1 more (CUDA 12.8)"


def test_engine_catalog_carries_the_torch_facts_for_the_about_box(home):
    catalog = EngineSession("cpu").catalog()
    assert catalog.torch_version == str(torch.__version__)
    assert catalog.cuda_status == devices.cuda_status()
