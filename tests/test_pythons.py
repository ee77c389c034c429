"""The Pythons we claim: pyproject.toml, the README, Binder and the pinned set agree.

The lock pins numpy 2.4 and pandas 3, which need Python 3.11, so 3.10 cannot install it; the
claim is 3.11+ everywhere, and the declared minimum must satisfy every pinned package's own
``Requires-Python`` (read from the installed metadata, which tests/test_notebooks.py ties to the pins).
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _minimum() -> Version:
    spec = SpecifierSet(PROJECT["requires-python"])
    (lower,) = [s for s in spec if s.operator == ">="]
    return Version(lower.version)


def _classified() -> list[Version]:
    return sorted(Version(c.rsplit(":: ", 1)[1]) for c in PROJECT["classifiers"] if re.search(r":: 3\.\d+$", c))


def test_every_pinned_package_installs_on_the_declared_minimum():
    minimum = _minimum()
    pinned = [line.split("==")[0] for line in (ROOT / "requirements.lock").read_text().splitlines()
              if "==" in line and not line.startswith("#")]
    refusing = []
    for name in pinned:
        try:
            needs = metadata.metadata(name).get("Requires-Python")
        except metadata.PackageNotFoundError:
            continue  # test_notebooks.py reports pins that are not installed
        if needs and not SpecifierSet(needs).contains(f"{minimum}.0"):
            refusing.append(f"{name} needs Python {needs}")
    assert not refusing, f"requires-python says >={minimum}, but " + "; ".join(refusing)


def test_readme_binder_and_classifiers_say_the_same_minimum():
    minimum = _minimum()
    readme = (ROOT / "README.md").read_text()
    claims = set(re.findall(r"Python (3\.\d+)\+", readme))
    assert claims == {str(minimum)}, claims
    assert _classified()[0] == minimum
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-") and Version(runtime.split("-", 1)[1]) >= minimum


def test_ci_runs_the_newest_classified_python():
    """.ci/run calls .ci/newest-python, which reads the newest version from the classifiers."""
    run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in run and ".ci/newest-python" in run
    script = (ROOT / ".ci" / "newest-python").read_text()
    assert "classifiers" in script and 'not slow and not browser' in script
    assert str(_classified()[-1]) in {"3.12", "3.13", "3.14"}
