import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
# the shared folder (benchmark files, references) sits beside the repository unless the environment says otherwise
SHARED = Path(os.environ.get("PATHPRUNE_SHARED", ROOT.parent / "shared"))
BENCHMARKS = Path(os.environ.get("PATHPRUNE_BENCHMARKS", SHARED / "benchmarks"))


def load_testbed():
    """A fresh copy of the testbed model and its tokenizer (tests that change or compare weights)."""
    from pathprune.models import load_model

    return load_model("testbed")


@pytest.fixture(scope="session")
def testbed():
    return load_testbed()


@contextmanager
def model_cache(folder: Path):
    """Models built in ``folder`` (PATHPRUNE_CACHE) from local files only (HF_HUB_OFFLINE) while inside."""
    old = {k: os.environ.get(k) for k in ("PATHPRUNE_CACHE", "HF_HUB_OFFLINE")}
    os.environ.update(PATHPRUNE_CACHE=str(folder), HF_HUB_OFFLINE="1")
    try:
        yield folder
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def prepared_cache(tmp_path_factory) -> tuple[Path, list[str]]:
    """A model cache that started empty, with the SmolLM2 reasoner prepared in it offline (the GGUF converted, the
    adapter merged): ``(folder, that preparation's progress messages)``. One preparation (~25 s) for every test
    that checks it, instead of one each."""
    from pathprune.models import resolve

    messages: list[str] = []
    with model_cache(tmp_path_factory.mktemp("cache")) as folder:
        resolve("smollm2-135m-reasoner", progress=messages.append)
    return folder, messages


@pytest.fixture(scope="module")
def in_prepared_cache(prepared_cache):
    """:func:`prepared_cache`, PATHPRUNE_CACHE pointing at it for the rest of the module."""
    with model_cache(prepared_cache[0]):
        yield prepared_cache


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


def console_script() -> str:
    """The installed ``pathprune`` console script of this interpreter's environment (what a user types)."""
    script = Path(sys.executable).parent / "pathprune"
    if not script.is_file():
        pytest.fail(f"no pathprune console script beside {sys.executable}: install the project (pip install -e .)")
    return str(script)


def cli(*args, **kw) -> subprocess.CompletedProcess:
    """``pathprune ARGS`` through the installed console script, in a fresh process, output captured as text."""
    return subprocess.run([console_script(), *args], capture_output=True, text=True, **kw)


def sorted_json_lines(path: Path) -> list[str]:
    """A JSONL file's records in a canonical form (keys sorted), order-free: for runs that must be equal."""
    return sorted(json.dumps(json.loads(line), sort_keys=True) for line in path.read_text().splitlines())


def paused_batch(model, tok, levels=(("chain", 8), ("list", 6)), seed=1, n=3, length=12):
    """One test problem per (family, level), launched ``n`` paths wide and paused after ``length`` tokens:
    ``(problems, prompts, batch)``."""
    from pathprune.engine import LiveBatch, SamplingParams
    from pathprune.testbed.problems import generate

    problems = [p for family, level in levels for p in generate(family, level, 1, "test")]
    prompts = [tok(p.prompt).input_ids for p in problems]
    batch = LiveBatch.launch(model, prompts, n, tok.pad_token_id)
    batch.decode_until(length, SamplingParams(seed=seed), eos=torch.tensor([tok.eos_token_id]),
                       banned=torch.tensor([4]))
    return problems, prompts, batch
