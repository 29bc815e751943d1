import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = Path(os.environ.get("PATHPRUNE_BENCHMARKS", ROOT.parent / "shared" / "benchmarks"))
if not BENCHMARKS.is_dir() and Path("/work/shared/benchmarks").is_dir():  # a CI clone elsewhere on this machine
    BENCHMARKS = Path("/work/shared/benchmarks")


@pytest.fixture(scope="session")
def testbed():
    from pathprune.models import load_model

    return load_model("testbed")


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    if not BENCHMARKS.is_dir():
        pytest.skip(f"benchmark files not found in {BENCHMARKS} (set PATHPRUNE_BENCHMARKS)")
    return BENCHMARKS
