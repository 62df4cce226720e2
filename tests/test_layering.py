"""The engine never imports Qt; the UI and its state never load torch.

Only frozen dataclasses and numpy arrays cross between them. Two checks keep it so:
the imports read from the source (absolute and relative, followed through the
studio's own modules) name the file and the chain that break the rule; and importing
every ui/state module in a fresh process shows what really loads, third-party
packages included.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "PyQt5", "PyQt6", "qasync", "shiboken6"}
# Third-party packages that import torch themselves.
TORCH = {"torch", "torchvision", "transformers", "diffusers", "accelerate", "spandrel"}


@cache
def parsed(source: str) -> ast.Module:
    return ast.parse(source)  # each probe graph reads the same files: parse each once


class ImportGraph:
    """The studio's modules and what each imports, with relative imports made absolute.

    A module's imports come in two kinds: those that run when it is imported (module
    level, class bodies) and those inside functions, which run when the function does.
    """

    def __init__(self, root: Path = ROOT, extra: dict[str, str] | None = None):
        self.sources: dict[str, tuple[str, bool]] = {}  # module -> (source, is a package)
        for path in (root / "studio").rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            package = parts[-1] == "__init__"
            self.sources[".".join(parts[:-1] if package else parts)] = (path.read_text(), package)
        for name, source in (extra or {}).items():  # probe modules that exist only in a test
            self.sources[name] = (source, False)
        self._imports: dict[str, tuple[set[str], set[str]]] = {}

    def imports(self, module: str) -> tuple[set[str], set[str]]:
        """(names imported at module level, names imported inside functions), all absolute."""
        if module not in self._imports:
            source, package = self.sources[module]
            base = module.split(".") if package else module.split(".")[:-1]
            at_import: set[str] = set()
            in_functions: set[str] = set()
            self._collect(parsed(source), base, at_import, in_functions, False)
            self._imports[module] = at_import, in_functions
        return self._imports[module]

    def _collect(self, node: ast.AST, base: list[str], at_import: set, in_functions: set, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                continue  # imports are statements: skip expressions
            later = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            test = getattr(child, "test", None)
            if isinstance(child, ast.If) and getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING":
                continue  # read by type checkers only
            target = in_functions if later else at_import
            if isinstance(child, ast.Import):
                target.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # from ..engine import x: up level - 1 packages from this one
                    anchor = base[: len(base) - (child.level - 1)]
                    module = ".".join(anchor + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                target.add(module)
                # `from package import name` may import the submodule package.name
                target.update(f"{module}.{alias.name}" for alias in child.names
                              if f"{module}.{alias.name}" in self.sources)
            self._collect(child, base, at_import, in_functions, later)

    def loads(self, module: str, forbidden: set[str]) -> list[str] | None:
        """The import chain from ``module`` to a package in ``forbidden``, or None.

        Followed: every import ``module`` makes, in its functions too (they run in its
        thread), then, through the studio's modules, what each runs when imported, parent
        packages included (importing a.b.c runs a/__init__ and a/b/__init__ first).
        """
        first = self.imports(module)[0] | self.imports(module)[1]
        chains = {name: [module, name] for name in first}
        queue = sorted(first)
        while queue:
            name = queue.pop(0)
            chain = chains[name]
            if name.split(".")[0] in forbidden:
                return chain
            parts = name.split(".")
            nexts = [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
            if name in self.sources:
                nexts += sorted(self.imports(name)[0])
            for nxt in nexts:
                if nxt not in chains:
                    chains[nxt] = chain + [nxt]
                    queue.append(nxt)
        return None


def modules_under(graph: ImportGraph, *packages: str) -> list[str]:
    return sorted(m for m in graph.sources if any(m == p or m.startswith(p + ".") for p in packages))


def offenders(graph: ImportGraph, packages: tuple[str, ...], forbidden: set[str]) -> list[str]:
    found = []
    for module in modules_under(graph, *packages):
        chain = graph.loads(module, forbidden)
        if chain is not None:
            found.append(" -> ".join(chain))
    return found


def test_engine_never_imports_qt():
    assert offenders(ImportGraph(), ("studio.engine",), QT) == []


def test_io_imports_neither_qt_nor_torch():
    """File reading and writing serves the window, the command line and the engine alike."""
    assert offenders(ImportGraph(), ("studio.io",), QT | TORCH) == []


def test_ui_and_state_never_import_torch():
    """Not directly, and not through a studio module (an engine module that imports torch, say)."""
    assert offenders(ImportGraph(), ("studio.ui", "studio.state"), TORCH) == []


def test_ui_and_state_load_no_torch_when_imported():
    """What really loads, third-party packages included: import them all in a fresh process."""
    modules = modules_under(ImportGraph(), "studio.ui", "studio.state")
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            f"    loaded = sorted(m for m in {sorted(TORCH)!r} if m in sys.modules)\n"
            "    if loaded:\n"
            "        sys.exit(f'{name} loaded {loaded}')\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_check_sees_absolute_imports():
    probe = "import torch.nn\nfrom PySide6.QtCore import QObject\n"
    graph = ImportGraph(extra={"studio.state.probe": probe})
    assert graph.loads("studio.state.probe", TORCH) == ["studio.state.probe", "torch.nn"]
    assert graph.loads("studio.state.probe", QT) == ["studio.state.probe", "PySide6.QtCore"]


def test_the_check_sees_relative_imports_of_engine_modules_that_import_torch():
    for package in ("studio.state", "studio.ui.canvas"):
        up = "." * (len(package.split(".")))  # from the package up to studio
        for line in (f"from {up}engine.runner import Runner", f"from {up}engine import samplers",
                     f"def later():\n    from {up}engine.schedules import make_schedule\n"):
            graph = ImportGraph(extra={f"{package}.probe": line})
            assert offenders(graph, (package,), TORCH) != [], line
            chain = graph.loads(f"{package}.probe", TORCH)
            assert chain[0] == f"{package}.probe" and chain[-1].split(".")[0] == "torch", chain
            assert any(step.startswith("studio.engine.") for step in chain), chain


def test_the_check_passes_torch_free_relative_imports():
    graph = ImportGraph(extra={"studio.state.probe": "from .paths import StudioPaths\nfrom ..io import safe_json\n"})
    assert graph.loads("studio.state.probe", TORCH) is None


def test_the_check_reads_through_parent_packages(tmp_path):
    """Importing a.b runs a/__init__; an __init__ that imports torch taints every module under it."""
    for path, text in {"studio/__init__.py": "", "studio/engine/__init__.py": "import torch\n",
                       "studio/engine/light.py": "import math\n", "studio/ui/__init__.py": "",
                       "studio/ui/view.py": "from ..engine.light import pi\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    chain = ImportGraph(tmp_path).loads("studio.ui.view", TORCH)
    assert chain == ["studio.ui.view", "studio.engine.light", "studio.engine", "torch"]
