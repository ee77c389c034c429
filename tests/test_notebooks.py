"""The notebooks as files, and the Binder environment that runs them.

Executing the notebooks is nbmake's job (``pytest`` collects ``notebooks/*.ipynb``, see
pyproject.toml). Here: they are committed without outputs and on the ``python3`` kernel; Binder
installs exactly the pinned versions (requirements.lock), a closed set that pip resolves to
itself; every import a notebook makes is in it; and Binder installs the project itself."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BINDER = ROOT / "binder"
TUTORIALS = ["01_quickstart", "02_health_vs_simple", "03_your_own_data", "04_resume_and_share", "05_runpod",
             "06_multi_device"]
# Present in every pip environment (repo2docker's too); `pip freeze` leaves them out of the lock.
INSTALLER_TOOLS = {"pip", "setuptools", "wheel"}


def test_the_tutorials_and_the_app_are_there():
    assert [p.stem for p in NOTEBOOKS] == [*TUTORIALS, "app"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_on_the_python3_kernel(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"  # what nbmake and Binder run
    assert "widgets" not in nb.metadata, "saved widget state: clear outputs before committing"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{path.name} cell {i} has outputs: clear them (Edit > Clear Outputs of All Cells) and save"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")  # a title says what it is


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, following ``-r`` includes (relative to the
    including file, as pip does). Anything but an exact pin fails."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            found.update(pins((path.parent / line.split(None, 1)[1]).resolve()))
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: not an exact pin: {raw!r}"
        found[canonicalize_name(req.name)] = specs[0].version
    return found


@pytest.fixture(scope="module")
def binder_pins() -> dict[str, str]:
    return pins(BINDER / "requirements.txt")


def test_binder_pins_exactly_the_lock(binder_pins):
    assert binder_pins == pins(ROOT / "requirements.lock")
    assert binder_pins["tensorflow-cpu"] and binder_pins["jupyterlab"] and binder_pins["pythreejs"]


def test_the_pins_are_a_closed_set_that_resolves_to_itself(binder_pins):
    """Every dependency of every pinned package is pinned too, at a version it accepts: pip has
    nothing left to choose. Read from the installed metadata, which must match the pins."""
    env = default_environment()
    needed_here = _needed_here(binder_pins, env)
    problems = []
    for name, version in binder_pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in needed_here:  # else only another Python needs it (e.g. overrides below 3.12)
                problems.append(f"{name}=={version} is not installed here (run make install)")
            continue
        if dist.version != version:
            problems.append(f"{name}: installed {dist.version}, pinned {version}")
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue  # another platform, Python or an extra nobody asked for
            dep = canonicalize_name(req.name)
            if dep in INSTALLER_TOOLS:
                continue
            if dep not in binder_pins:
                problems.append(f"{name} needs {req}, which is not pinned")
            elif not req.specifier.contains(binder_pins[dep], prereleases=True):
                problems.append(f"{name} needs {req}, but {dep}=={binder_pins[dep]} is pinned")
    assert not problems, "\n".join(problems)


def _needed_here(pins: dict[str, str], env: dict[str, str]) -> set[str]:
    """Pinned names some installed pinned package requires on this platform and Python."""
    needed: set[str] = set()
    for name in pins:
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                needed.add(canonicalize_name(req.name))
    return needed


def test_the_project_and_its_extras_are_covered(binder_pins):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("cpu", "runpod", "postgres", "lab"):  # what the notebooks and the app use
        wanted += project["optional-dependencies"][extra]
    missing = [r for r in wanted if canonicalize_name(Requirement(r).name) not in binder_pins]
    assert not missing, missing
    off = [r for r in wanted
           if not Requirement(r).specifier.contains(binder_pins[canonicalize_name(Requirement(r).name)])]
    assert not off, off


def test_binder_builds_python_3_11_and_installs_hpo_nb(binder_pins):
    # Binder runs the oldest Python pyproject claims, the one CI's main suite runs (.ci/run adds the
    # newest); compared with pyproject rather than this interpreter, so the test holds on 3.12+ too.
    minimum = re.fullmatch(r">=\s*(3\.\d+)(\.\d+)?",
                           tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
                           .split("#")[0].strip())
    assert minimum, "requires-python should read >=3.X"
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == f"python-{minimum.group(1)}", "Binder's Python is the oldest one we claim"
    assert sys.version_info[:2] >= tuple(map(int, minimum.group(1).split(".")))
    post = BINDER / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    script = post.read_text()
    assert re.search(r"pip install .*--no-deps -e \.$", script, re.M)  # the project, pinned deps untouched
    for extension in ("@jupyter-widgets/jupyterlab-manager", "jupyter-threejs", "jupyterlab-plotly"):
        assert extension in script


def notebook_imports(path: Path) -> set[str]:
    """Top-level modules a notebook imports (IPython magics and shell lines skipped)."""
    names: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_notebook_import_is_installed_by_binder(binder_pins):
    providers = metadata.packages_distributions()
    seen: set[str] = set()
    problems = []
    for path in NOTEBOOKS:
        for module in sorted(notebook_imports(path)):
            seen.add(module)
            if module in sys.stdlib_module_names or module == "hpo_nb":  # hpo_nb: binder/postBuild
                continue
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            if not dists & set(binder_pins):
                problems.append(f"{path.name} imports {module!r} (from {sorted(dists) or 'nothing installed'}), "
                                "which binder/requirements.txt does not install")
    assert not problems, "\n".join(problems)
    assert {"hpo_nb", "plotly", "optuna", "numpy", "pandas", "optuna_dashboard"} <= seen  # the parse found them
