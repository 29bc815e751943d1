import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
# the shared folder (benchmark files, references) sits beside the repository unless the environment says otherwise
SHARED = Path(os.environ.get("PATHPRUNE_SHARED", ROOT.parent / "shared"))
BENCHMARKS = Path(os.environ.get("PATHPRUNE_BENCHMARKS", SHARED / "benchmarks"))


@pytest.fixture(scope="session")
def testbed():
    from pathprune.models import load_model

    return load_model("testbed")


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    if not BENCHMARKS.is_dir():
        pytest.skip(f"benchmark files not found in {BENCHMARKS} (set PATHPRUNE_BENCHMARKS)")
    return BENCHMARKS


def run_pruner(problems, model, tok, signal="random", schedule=None, params=None, **kw):
    """Graded results of a Pruner run over benchmark problems (the engine plus evaluation's grading)."""
    from pathprune.engine import Pruner
    from pathprune.evaluation.problems import solve

    return solve(Pruner((model, tok), signal, schedule, **kw), problems, params)
