"""Monte-Carlo labelling through :func:`run_units`: one unit per problem, the same run directory as
``run_labelling``.

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
from .runner import run_units
from .units import UnitStats

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
    """Label ``problems`` into ``out_dir`` on ``workers`` Ray actors (each loads ``model_name``; 0 or 1: in this
    process); resumable,
    interchangeable with :func:`pathprune.stop.labels.run_labelling` (same config, same records)."""
    logs: list[RunLog] = []

    def open_log(call_one) -> RunLog:  # the run config holds the fingerprint of a worker's model
        logs.append(open_label_log(out_dir, model_name, call_one("fingerprint"), cfg, problems))
        return logs[0]

    stats = run_units([(p.id, p) for p in problems], partial(LabelWorker, model_name, cfg), open_log,
                      workers=workers, ray_address=ray_address, resources=resources,
                      threads_per_worker=threads_per_worker, max_retries=max_retries, progress=progress,
                      failed_fields=FAILED_FIELDS, start_timeout=start_timeout)
    return logs[0], stats
