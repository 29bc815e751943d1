"""Monte-Carlo labelling on a Ray pool: one unit per problem, the same run directory as ``run_labelling``.

A problem is the unit because its prefixes come from its own filter paths
(stage 1 must finish before stage 2 can be cut). Every random draw depends only
on (seed, problem id, path, step) -- see :mod:`pathprune.engine.sampling` -- and
a problem is labelled by the same code on any worker, so the records equal the
single-process run's exactly; only their order in the files differs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..io.runlog import RunLog
from ..stop.labels import LabelConfig, label_problem, label_provenance, open_label_log
from ..tasks.problem import Problem
from .units import UnitStats, run_units

FAILED_FIELDS = {"kept": False, "prefixes": 0}


class LabelWorker:
    """One model replica: ``worker(problem) -> (unit_row, records)``; on the GPU Ray gave it, if any."""

    def __init__(self, model_name: str, cfg: LabelConfig, device: str | None = None):
        from ..models import load_model
        from ..stop.config import fingerprint

        self.model, self.tok = load_model(model_name, device=device or ("cuda" if _cuda() else "cpu"))
        self.cfg = cfg
        self.fp = fingerprint(self.model)
        self.provenance = label_provenance(model_name, self.fp, cfg)

    def fingerprint(self) -> dict:
        return self.fp

    def __call__(self, problem: Problem) -> tuple[dict, list[dict]]:
        return label_problem(self.model, self.tok, problem, self.cfg, self.provenance)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_labelling_distributed(model_name: str, problems: list[Problem], cfg: LabelConfig, out_dir: str | Path, *,
                              workers: int = 2, ray_address: str = "local", resources: dict | None = None,
                              threads_per_worker: int | None = None, max_retries: int = 2,
                              progress: Callable[[int], None] | None = None,
                              start_timeout: float = 600.0) -> tuple[RunLog, UnitStats]:
    """Label ``problems`` into ``out_dir`` on ``workers`` Ray actors (each loads ``model_name``); resumable,
    interchangeable with :func:`pathprune.stop.labels.run_labelling` (same config, same records)."""
    from .ray_backend import RayPool

    with RayPool(partial(LabelWorker, model_name, cfg), workers, ray_address=ray_address, resources=resources,
                 threads_per_worker=threads_per_worker, start_timeout=start_timeout) as pool:
        log = open_label_log(out_dir, model_name, pool.call_one("fingerprint"), cfg, problems)
        stats = pool.run([(p.id, p) for p in problems], log, max_retries=max_retries, progress=progress,
                         failed_fields=FAILED_FIELDS)
    return log, stats
