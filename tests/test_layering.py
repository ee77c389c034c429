"""Dependencies point one way: views import the core, the core never imports views.

The core is everything in hpo_nb/ except views/ and the entry points above both layers
(cli.py, __main__.py, nocode.py: the no-code app builds an Experiment and shows views). The one
allowed exception is ``hpo_nb.results._views``, documented there: Experiment's drawing
conveniences (dashboard(), importance_heatmap(), architecture_3d(), ...) are public contract.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hpo_nb

PACKAGE = Path(hpo_nb.__file__).parent
ENTRY_POINTS = {"cli.py", "__main__.py", "nocode.py"}
ALLOWED = {("results.py", "_views")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported module, enclosing function or None) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]

    def visit(node: ast.AST, func: str | None):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, name
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    yield f"{base}.{alias.name}", name
            yield from visit(child, name)

    yield from visit(tree, None)


def _core_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "views" or str(rel) in ENTRY_POINTS:
            continue
        yield rel, path


def test_the_core_never_imports_views():
    offenders, allowed_seen = [], set()
    for rel, path in _core_files():
        for module, func in _imports(path):
            if module == "hpo_nb.views" or module.startswith("hpo_nb.views."):
                if (str(rel), func) in ALLOWED:
                    allowed_seen.add((str(rel), func))
                else:
                    offenders.append(f"{rel} ({func or 'module level'}) imports {module}")
    assert not offenders, offenders
    assert allowed_seen == ALLOWED  # the documented exception is still where the docs say


def test_the_checker_sees_relative_and_lazy_imports():
    fake = PACKAGE / "views" / "__init__.py"
    found = {m for m, _ in _imports(fake)}
    assert "hpo_nb.views.dashboard.Dashboard" in found  # a lazy import inside a function
    assert any(m.startswith("hpo_nb.views") for m, f in _imports(PACKAGE / "results.py") if f == "_views")

