"""Claims in the docs that a file can check: every benchmark the README quotes is recorded in
benchmarks/RESULTS.md, and no doc or notebook puts the RunPod API key into code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_the_readme_quotes_is_in_results():
    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    table = readme[readme.index("| what | figure | command |"):]
    table = table[:table.index("\n\n")]
    scripts = re.findall(r"benchmarks/(\w+\.py)", table)
    assert len(scripts) >= 7
    for script in scripts:
        assert f"`{script}`" in results or f"benchmarks/{script}" in results, f"{script}: not in RESULTS.md"
    recorded = re.findall(r"\d+\.\d+", results)
    for row in table.splitlines()[2:]:  # each figure quoted in the table is in RESULTS.md (maybe rounded)
        for number in re.findall(r"\d+\.\d+", row.split("|")[2]):
            places = len(number.split(".")[1])
            assert any(round(float(r), places) == float(number) for r in recorded), \
                f"{number} (README: {row.split('|')[1].strip()}) is not in RESULTS.md"


def test_no_doc_sets_the_runpod_key_in_code():
    pattern = re.compile(r"""environ\[\s*\\?["']RUNPOD_API_KEY\\?["']\s*\]\s*=""")
    docs = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("runpod_image/*.md"),
            *ROOT.glob("notebooks/*.ipynb")]
    offenders = [str(p.relative_to(ROOT)) for p in docs if pattern.search(p.read_text())]
    assert not offenders, f"set the key in the environment before Jupyter starts, not in code: {offenders}"
