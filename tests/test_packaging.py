"""The runtime install (`pip install .`, no extras) must carry every package that the
runtime path imports: only the torch-based model building, export and training may need
an extra. Checked from the source's imports against pyproject's dependencies, since the
test environment itself has every extra installed and would not notice."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trafficprn"
# modules that belong to the `train` extra (torch) or the `sim` extra (SUMO binaries)
EXTRA_ONLY = ("detect/darknet.py", "detect/prn.py", "detect/export.py", "detect/quantize.py", "detect/train/")


def _requirement_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-")


def _installed_closure(names: set[str]) -> set[str]:
    """The runtime requirements and everything they require in turn (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [_requirement_name(r) for r in reqs if "extra ==" not in r]
    return seen


def _top_level_imports(path: Path) -> set[str]:
    """Imports at module level (lazy imports inside functions are optional features)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    body = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    for node in (sub for top in body for sub in ast.walk(top)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_imports_are_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _installed_closure({_requirement_name(r) for r in project["dependencies"]})
    dists = packages_distributions()
    missing: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(EXTRA_ONLY):
            continue
        for name in _top_level_imports(path):
            if name in sys.stdlib_module_names or name in ("trafficprn", "torch", "onnx", "sumo"):
                continue
            wanted = {d.lower().replace("_", "-") for d in dists.get(name, [name])}
            if not wanted & runtime:
                missing.setdefault(name, set()).add(rel)
    assert not missing, f"imported at run time but not in [project].dependencies: {missing}"
