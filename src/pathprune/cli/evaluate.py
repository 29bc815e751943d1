"""The one evaluation entry point behind ``pathprune eval`` and ``pathprune demo``.

A plain function with real defaults: commands call it with their parsed values, tests and scripts with only
what they need. A typer command function is never called as a library function (its defaults are typer
``OptionInfo`` objects, not values).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..engine.steps import DEFAULT_DELIMITER, recorded_settings
from ..errors import PathpruneError
from ..tasks.problem import Problem
from .console import progress_bar

EVAL_SIGNALS = ("random", "jaccard", "mean_logprob", "conf_lowest", "stop")


def evaluate(out: str | Path, problems: Sequence[Problem], *, datasets: dict[str, str] | None = None,
             model: str = "testbed", signals: Sequence[str] = EVAL_SIGNALS, n: int = 16,
             prefixes: Sequence[int | str] = (16,), keeps: Sequence[int] = (4,), temperature: float = 1.0,
             top_p: float = 1.0, top_k: int = 0, max_new_tokens: int = 160, seeds: Sequence[int] = (0,),
             problems_per_batch: int = 4, bootstrap: int = 1000, workers: int = 0, ray_address: str = "local",
             worker_cpus: float = 1.0, worker_gpus: float = 0.0, backend: str = "transformers",
             source: dict | None = None, step_delimiter: str = DEFAULT_DELIMITER):
    """Every signal on the same launched paths of ``problems`` into the run directory ``out`` (resumed when it
    holds the same config), then the report (:func:`pathprune.evaluation.report.build_report`).

    ``source`` records where the problems came from (the config guard and the report show it).
    Every input is checked before a model is loaded or anything is written to ``out``.
    """
    from ..evaluation.report import build_report
    from ..evaluation.runs import EvalConfig, run_eval
    from ..io.runlog import cleaned_on_failure
    from .inputs import checked_backend, checked_signals, model_and_tokenizer

    out = Path(out)
    cfg = EvalConfig(model=model, signals=[s.strip() for s in signals if s.strip()], n=n, prefixes=list(prefixes),
                     keeps=list(keeps), seeds=list(seeds) or [0], problems_per_batch=problems_per_batch,
                     sampling=recorded_settings(dict(temperature=temperature, top_p=top_p, top_k=top_k,
                                                     max_new_tokens=max_new_tokens, step_delimiter=step_delimiter)),
                     problems=dict(source or {}))
    signal_objects = checked_signals(cfg.signals)
    if workers < 0:
        raise PathpruneError(f"--workers must be >= 0, got {workers}", parameter="workers", value=workers)
    checked_backend(backend, workers=workers)
    if workers >= 2:
        from ..distributed.ray_executor import check_address

        check_address(ray_address)
    if not problems:
        raise PathpruneError("no problems to evaluate")
    m, tok = model_and_tokenizer(model, backend, signal_objects) if workers < 2 else (None, None)
    with cleaned_on_failure(out), progress_bar() as bar:
        task = bar.add_task("problems × seeds", total=len(problems) * len(cfg.seeds))
        run_eval(m, tok, list(problems), cfg, out, datasets, progress=lambda k: bar.advance(task, k), workers=workers,
                 ray_address=ray_address, resources={"num_cpus": worker_cpus, "num_gpus": worker_gpus})
    return build_report(out, n_boot=bootstrap)
