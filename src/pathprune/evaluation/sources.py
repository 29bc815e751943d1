"""Problems for a run, from where the user points: a benchmark file, a generated suite, or the testbed.

One grammar for every command (``run``, ``eval``, ``label``) and for library users:

- a JSON/JSONL benchmark file (or ``hf:NAME[:SPLIT]``, see :func:`pathprune.tasks.load_benchmark`);
- ``wordproblems[:LEVELS[:FORMAT]]`` or ``reasoner[:LEVELS[:FORMAT]]``: generated worked-solution word problems
  (split, count per level and seed from the other arguments);
- nothing: the testbed suite of ``split`` at ``levels``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from ..errors import PathpruneError
from ..tasks import load_benchmark, reasoner, wordproblems
from ..tasks.problem import Problem
from ..testbed.problems import suite


def parse_levels(levels: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"4,8"`` or ``(4, 8)`` → ``(4, 8)``; None or empty → None (every level)."""
    if levels is None or levels == "":
        return None
    if isinstance(levels, str):
        try:
            return tuple(int(x) for x in levels.split(",") if x.strip()) or None
        except ValueError:
            raise PathpruneError(f"levels must be comma-separated integers, got {levels!r}",
                                 parameter="levels", value=levels) from None
    return tuple(int(x) for x in levels) or None


GENERATED = {"wordproblems": wordproblems, "reasoner": reasoner}
"""The generated suites by the first word of their spec; each module parses the rest (``parse_spec``) and
makes the problems (``from_spec``)."""


def generated_suite(source: str | None):
    """The suite module a ``wordproblems[:…]`` / ``reasoner[:…]`` spec names, None for anything else."""
    return GENERATED.get(source.split(":")[0]) if source else None


def _nonempty(problems: list[Problem], what: str) -> list[Problem]:
    if not problems:
        raise PathpruneError(f"no problems selected from {what}")
    return problems


def load_problems(source: str | None = None, split: str = "test", levels: str | Sequence[int] | None = None,
                  per_level: int = 10, limit: int | None = None, seed: int = 0,
                  exclude: Collection[str] = ()) -> list[Problem]:
    """The problems ``source`` names (see the module docstring) whose ids are not in ``exclude`` (e.g. a model's
    SFT pool, :func:`pathprune.models.train_reasoner.sft_problem_ids`); ``limit`` keeps the first ones."""
    if limit is not None and limit < 1:
        raise PathpruneError(f"--limit must be >= 1, got {limit}", parameter="limit", value=limit)
    if per_level < 1:
        raise PathpruneError(f"--per-level must be >= 1, got {per_level}", parameter="per_level", value=per_level)
    suite_module = generated_suite(source)
    if suite_module is not None:
        problems, what = suite_module.from_spec(source, split, per_level, seed), f"--benchmark {source}"
    elif source:  # a file: read only what is kept, unless excluded problems must be skipped first
        problems, what = load_benchmark(source, limit=None if exclude else limit), f"--benchmark {source}"
    else:
        wanted = parse_levels(levels)
        problems = suite(split, per_level, seed, levels=wanted)
        what = f"the testbed's {split} split" + (f" at levels {levels}" if wanted else "")
    if exclude:
        problems, what = [p for p in problems if p.id not in exclude], f"{what} without the excluded problems"
    return _nonempty(problems[:limit] if limit else problems, what)


def dataset_of(problem: Problem, default: str) -> str:
    """The dataset a problem is reported under: its testbed family, else ``default`` (a file's stem)."""
    family = problem.meta.get("family")
    return f"testbed-{family}" if family and problem.answer_kind == "testbed" else default


def problems_with_datasets(sources: Sequence[str] | None = None, split: str = "test",
                           levels: str | Sequence[int] | None = None, per_level: int = 10, limit: int | None = None,
                           seed: int = 0) -> tuple[list[Problem], dict[str, str]]:
    """Problems from several sources (``limit`` per source) and each problem's dataset name."""
    problems, datasets = [], {}
    for source in sources or [None]:
        chunk = load_problems(source, split, levels, per_level, limit, seed)
        default = Path(source).stem if source else "testbed"
        for p in chunk:
            datasets[p.id] = dataset_of(p, default)
        problems += chunk
    return problems, datasets
