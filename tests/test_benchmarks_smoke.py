"""The benchmark scripts still start (they are run by `make bench`, never timed in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = ["progress_overhead.py", "vs_anchors.py", "memory_growth.py", "first_progress.py", "search_quality.py",
           "priors_sweep.py", "text_priors_sweep.py", "lr_schedule_check.py", "checkpoints.py",
           "diagnostics_cost.py", "health_gate.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    out = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout and "--" in out.stdout


@pytest.mark.slow
def test_progress_overhead_quick_prints_a_ratio() -> None:
    """One tiny pair through the real progress path: the last line is the ratio the README quotes."""
    out = subprocess.run([sys.executable, str(BENCH / "progress_overhead.py"), "--quick"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("ratio ") and float(last.split()[1]) > 0
