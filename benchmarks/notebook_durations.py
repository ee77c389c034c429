"""How long each tutorial takes, as its first cell claims: each notebook executed top to bottom
in a fresh kernel (nbclient, as nbmake does), wall time from kernel start to the last cell.

    .venv/bin/python benchmarks/notebook_durations.py                       # 01, 02, 03
    .venv/bin/python benchmarks/notebook_durations.py 04_resume_and_share   # any by name

Prints one line per notebook and the machine's load average, which the times depend on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(name: str) -> float:
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory(prefix="hpo-nb-nb-") as cwd:
        start = time.perf_counter()
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
        return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=["01_quickstart", "02_health_vs_simple", "03_your_own_data"])
    args = p.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}")
    for name in args.names:
        seconds = run(name)
        print(f"{name:24s} {seconds:7.1f} s   (load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
