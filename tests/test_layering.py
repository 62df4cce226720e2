"""The engine never imports Qt; the UI never imports torch (only frozen dataclasses and numpy cross)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "studio"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_qt():
    offenders = [str(p) for p in (ROOT / "engine").rglob("*.py")
                 if imported_modules(p) & {"PySide6", "PyQt5", "PyQt6", "qasync", "shiboken6"}]
    assert offenders == []


def test_ui_never_imports_torch():
    ui_dirs = [ROOT / d for d in ("ui", "state") if (ROOT / d).exists()]
    offenders = [str(p) for d in ui_dirs for p in d.rglob("*.py") if "torch" in imported_modules(p)]
    assert offenders == []


def test_the_check_sees_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import torch.nn\nfrom PySide6.QtCore import QObject\n")
    assert {"torch", "PySide6"} <= imported_modules(probe)
