"""The package layout keeps its promises: no import cycles, nothing imports an entry point,
the layers below `segkit.run` never reach up into it, entry points stay short, the root stays
small, and ``import segkit`` / ``segkit --help`` import no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import segkit

PACKAGE = Path(segkit.__file__).parent
#: `python -m` entry points (plus the `segkit` command itself).
ENTRY_POINTS = {
    "segkit.__main__",
    "segkit.train",
    "segkit.eval",
    "segkit.predict",
    "segkit.export",
    "segkit.compare",
    "segkit.sweep",
    "segkit.data.check",
}
#: Packages below `segkit.run`: they must not import it (imports point down the page).
LOWER = (
    *("segkit.tasks", "segkit.models", "segkit.data", "segkit.formats", "segkit.callbacks"),
    *("segkit.tracking", "segkit.losses", "segkit.metrics", "segkit.optim", "segkit.inference"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """segkit modules `path` imports anywhere (top level and inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in MODULES and name != "segkit":
                found.add(name)
            elif name.startswith("segkit.") and name.rsplit(".", 1)[0] in MODULES:
                parent = name.rsplit(".", 1)[0]
                if parent != "segkit":
                    found.add(parent)
    return found


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def test_the_import_walk_sees_the_known_edges():
    # The walk itself must work, or every test below would pass vacuously.
    assert "segkit.run.build" in GRAPH["segkit.run.fit"]
    assert "segkit.run.precision" in GRAPH["segkit.run.build"]  # a function-level import
    assert "segkit.tasks.semantic_evaluation" in GRAPH["segkit.tasks.semantic"]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles a depth-first walk of `graph` meets (each as a closed path)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_there_are_no_import_cycles():
    # The walk finds a planted cycle, so an empty answer on segkit means something.
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_cycles(GRAPH) == []


def test_nothing_imports_an_entry_point():
    offenders = {
        f"{name} imports {dep}"
        for name, deps in GRAPH.items()
        for dep in deps & ENTRY_POINTS
        if dep != name
    }
    assert not offenders


def test_layers_below_run_never_import_it():
    offenders = {
        f"{name} imports {dep}"
        for name, deps in GRAPH.items()
        if name.startswith(LOWER) and name not in ENTRY_POINTS
        for dep in deps
        if dep.startswith("segkit.run")
    }
    assert not offenders


def test_the_root_holds_entry_points_and_at_most_4_shared_modules_and_entry_points_stay_short():
    root = {module_name(p) for p in PACKAGE.glob("*.py")} - ENTRY_POINTS - {"segkit"}
    # A command may live at the root; library code goes to a package.
    assert len(root) <= 4, sorted(root)
    for name in ENTRY_POINTS:
        lines = len(MODULES[name].read_text().splitlines())
        assert lines <= 150, f"{name}: {lines} lines"


def test_import_segkit_and_segkit_help_import_no_torch():
    code = (
        "import sys, segkit; from segkit.__main__ import main; main(['--help']); "
        "heavy = {'torch', 'lightning', 'hydra', 'omegaconf'} & set(sys.modules); "
        "assert not heavy, heavy; print(segkit.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command in ("train", "eval", "predict", "export", "compare", "sweep", "check"):
        assert f"\n  {command} " in out.stdout
    from importlib import metadata

    assert out.stdout.strip().endswith(metadata.version("segkit"))


def test_the_version_has_one_source():
    from importlib import metadata

    citation = (PACKAGE.parent / "CITATION.cff").read_text()
    assert segkit.__version__ == metadata.version("segkit")
    assert f"\nversion: {segkit.__version__}\n" in citation
