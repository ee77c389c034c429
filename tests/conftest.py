"""Shared fixtures: real offline data under ../shared/data, tiny search settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# A small, fast CNN space for digits: searches what matters, fixes the rest.
TINY_CNN = {"conv_blocks": 1, "filters": [8, 16], "kernel_size": 3, "dense_layers": 0, "batch_size": 64,
            "batch_norm": False, "optimizer": "adam", "learning_rate": (3e-3, 1e-2)}


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"offline test data missing at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
