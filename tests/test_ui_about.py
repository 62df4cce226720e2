"""Help → About: the facts of --version in the window, torch's filled in when the engine reports ready."""

from PySide6.QtGui import QGuiApplication

from studio.resource_files import resource_dir
from studio.state.jobs import EngineCatalog, ModelChoice
from studio.state.paths import StudioPaths
from studio.version import studio_version

CPU_BUILD = "not found: torch 2.13.0+cpu is a CPU-only build; install the CUDA build of torch first"
CATALOG = EngineCatalog((ModelChoice("toy", "Toy"),), (("euler", "Euler"),), ("leading",), "toy", "cpu",
                        torch_version="2.13.0+cpu", cuda_status=CPU_BUILD)


def make_studio(qtbot, root):
    from studio.app import create_studio

    studio = create_studio(StudioPaths.under(root))  # the engine is not started: torch facts must wait
    qtbot.addWidget(studio.window)
    return studio


def about_action(window):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return next(a for a in help_menu.actions() if a.text() == "About Diffusion Studio")


def test_about_says_starting_until_the_engine_is_ready_then_shows_torch_and_cuda(qtbot, tmp_path):
    studio = make_studio(qtbot, tmp_path)
    about_action(studio.window).trigger()
    dialog = studio.controller.about.dialog
    assert dialog.isVisible()
    assert dialog.value("Diffusion Studio") == studio_version()
    assert dialog.value("torch") == dialog.value("device") == dialog.value("CUDA") == "starting…"
    assert dialog.value("settings") == str(tmp_path / "config" / "settings.json")
    assert dialog.value("history") == str(tmp_path / "data" / "history")
    assert dialog.value("embedded model") == str(resource_dir("embedded"))
    assert dialog.value("model folders").startswith("none set")

    studio.engine.ready.emit(CATALOG)  # as the engine thread does once torch has loaded
    assert dialog.value("torch") == "2.13.0+cpu"
    assert dialog.value("device") == "CPU (Settings → device: auto)"
    assert dialog.value("CUDA") == CPU_BUILD
    dialog.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert "torch:" in copied and "2.13.0+cpu" in copied and CPU_BUILD in copied
    studio.controller.shutdown()


def test_about_lists_the_settings_model_folders(qtbot, tmp_path):
    studio = make_studio(qtbot, tmp_path)
    studio.controller.settings = studio.controller.settings.with_changes(model_folders=("/a", "/b"))
    dialog = studio.controller.about.show()
    assert dialog.value("model folders") == "/a, /b"
    studio.controller.shutdown()
