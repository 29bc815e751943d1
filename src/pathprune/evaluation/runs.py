"""Evaluation run directories: run a shared launch into a resumable log, read it back.

Layout (see :mod:`pathprune.io.runlog`)::

    config.json     model, problems, signals, N, checkpoints, keeps, sampling, seeds
    paths.jsonl     one line per path: length, answer, correctness, every signal's scores
    problems.jsonl  one line per (problem, seed) unit, written after its paths
    summary.json    metrics per setting (rebuilt by ``pathprune report``)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.sampling import SamplingParams
from ..engine.schedule import Schedule, Stage, parse_checkpoint
from ..errors import PathpruneError
from ..io.runlog import RunLog
from ..tasks.problem import Problem
from .harness import SharedLaunch
from .offline import Setting


@dataclass
class EvalConfig:
    """What one evaluation compares: every signal on the same N paths per problem and seed."""

    model: str
    signals: list[str]
    n: int = 16
    prefixes: list[int | str] = field(default_factory=lambda: [16])
    """Checkpoints L or ``"stepM/L"``; the first is the main one."""
    keeps: list[int] = field(default_factory=lambda: [4])
    """Numbers of kept paths k; the first is the main one."""
    sampling: dict = field(default_factory=dict)
    """SamplingParams fields except n and seed."""
    seeds: list[int] = field(default_factory=lambda: [0])
    problems: dict = field(default_factory=dict)
    """Where the problems came from (for the config guard and the report)."""
    problems_per_batch: int = 4

    def __post_init__(self) -> None:
        """Checked when built, read back from a run directory included."""
        if not self.signals:
            raise PathpruneError("give at least one signal")
        if not self.prefixes or not self.keeps or not self.seeds:
            raise PathpruneError("give at least one prefix length, one k and one seed")
        bad = [k for k in self.keeps if not 1 <= k <= self.n]
        if bad:
            raise PathpruneError(f"keep k={bad[0]} is impossible with N={self.n} paths (need 1 <= k <= N)")
        if self.problems_per_batch < 1:
            raise PathpruneError(f"problems_per_batch must be >= 1, got {self.problems_per_batch}")
        sampling = self.sampling_for(self.seeds[0])  # checks the sampling fields
        for checkpoint in self.prefixes:  # every (checkpoint, k) read off the run is a valid one-stage schedule
            try:
                length, steps = parse_checkpoint(str(checkpoint))
            except ValueError:
                raise PathpruneError(f"bad checkpoint {checkpoint!r}: give a length L or stepM/L") from None
            for k in self.keeps:
                Schedule((Stage(length, keep=k, steps=steps),)).check(self.n, sampling.max_new_tokens)

    def sampling_for(self, seed: int) -> SamplingParams:
        return SamplingParams(n=self.n, seed=seed, **self.sampling)

    def settings(self) -> list[Setting]:
        """No pruning, then every signal × checkpoint × k (main setting first per signal)."""
        return [Setting(None)] + [Setting(s, L, k) for s in self.signals for L in self.prefixes for k in self.keeps]


def unit_id(problem: Problem, seed: int) -> str:
    return f"{problem.id}@{seed}"


def _rows(problem: Problem, seed: int, dataset: str, plog) -> tuple[dict, list[dict]]:
    uid = unit_id(problem, seed)
    unit = {"unit_id": uid, "seed": seed, "dataset": dataset, **plog.unit,
            "meta": {k: v for k, v in problem.meta.items() if k in ("family", "difficulty")}}
    return unit, [{"unit_id": uid, **p} for p in plog.paths]


class EvalWorker:
    """One model replica for distributed evaluation: ``worker((problem, seed, dataset)) -> rows``."""

    def __init__(self, model_name: str, cfg: EvalConfig):
        from ..models import load_model

        self.model, self.tok = load_model(model_name)
        self.cfg = cfg
        self._launches: dict[int, SharedLaunch] = {}  # per seed: signals (judges, encoders) load once

    def __call__(self, payload: tuple[Problem, int, str]) -> tuple[dict, list[dict]]:
        problem, seed, dataset = payload
        if seed not in self._launches:
            self._launches[seed] = SharedLaunch(self.model, self.tok, self.cfg.signals, self.cfg.prefixes,
                                                self.cfg.sampling_for(seed), problems_per_batch=1)
        return _rows(problem, seed, dataset, next(iter(self._launches[seed].run([problem]))))


def run_eval(model, tokenizer, problems: list[Problem], cfg: EvalConfig, out: str | Path,
             datasets: dict[str, str] | None = None, progress: Callable[[int], None] | None = None, *,
             workers: int = 0, ray_address: str = "local", resources: dict | None = None) -> RunLog:
    """Evaluate ``problems`` under ``cfg`` into the run directory ``out`` (resumed when it exists).

    With ``workers >= 2`` the (problem, seed) units run on Ray actors that each load ``cfg.model``
    (``model``/``tokenizer`` may then be None); every unit is written exactly once, failed units are
    recorded with their reason and left out of the metrics.
    """
    datasets = datasets or {}
    log = RunLog(out, {"eval": cfg.__dict__}, key="unit_id")
    if workers >= 2:
        from functools import partial

        from ..distributed import run_units

        units = [(unit_id(p, seed), (p, seed, datasets.get(p.id, "problems"))) for seed in cfg.seeds for p in problems]
        run_units(units, partial(EvalWorker, cfg.model, cfg), log, workers=workers, ray_address=ray_address,
                  resources=resources, progress=progress)
        return log
    for seed in cfg.seeds:
        todo = [p for p in problems if unit_id(p, seed) not in log.done]
        if progress and len(todo) < len(problems):
            progress(len(problems) - len(todo))
        if not todo:
            continue
        launch = SharedLaunch(model, tokenizer, cfg.signals, cfg.prefixes, cfg.sampling_for(seed),
                              problems_per_batch=cfg.problems_per_batch)
        by_id = {p.id: p for p in todo}
        for plog in launch.run(todo, progress=progress):
            problem = by_id[plog.unit["problem_id"]]
            log.append(*_rows(problem, seed, datasets.get(problem.id, "problems"), plog))
    return log


def read_run(run_dir: str | Path) -> tuple[EvalConfig, list[dict], dict[str, list[dict]]]:
    """Config, units and paths-by-unit of an evaluation run directory."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise PathpruneError(f"{run_dir} is not an evaluation run directory (no config.json)")
    try:
        raw = json.loads(cfg_path.read_text())["eval"]
        cfg = EvalConfig(**raw)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise PathpruneError(f"{cfg_path}: not an evaluation config ({err})") from None
    log = RunLog(run_dir, {"eval": raw}, key="unit_id")
    paths: dict[str, list[dict]] = defaultdict(list)
    for row in log.items:
        paths[row["unit_id"]].append(row)
    units = [u for u in log.units if not u.get("failed")]  # failed units carry their reason, no paths
    if not units:
        raise PathpruneError(f"{run_dir} holds no finished problem yet")
    return cfg, units, dict(paths)
