"""Idempotent units of work, written exactly once to a resumable log: in process or on a Ray pool.

A *unit* is ``(unit_id, payload)``: e.g. one problem to label, or a batch of
problems to evaluate. A *worker* is built once per process by ``make_worker()``
(it loads the model) and maps a payload to its output::

    worker(payload) -> (unit_row, item_rows)            # one unit row
                     | [(unit_row, item_rows), ...]      # a batch unit: one row per sub-unit

Outputs go to ``out``, a :class:`pathprune.io.runlog.RunLog` or anything with
``done`` (a set of finished unit ids), ``key`` (the id field of unit rows) and
``append(unit_row, item_rows)``. Only the driver writes, as units finish, so
each unit lands once; a unit's rows are written only after the whole unit
succeeded, so a retry or a killed job never leaves half a unit (RunLog drops
the items of a unit whose row is missing on resume).

A unit that raises, or whose worker process dies, is retried (on another
worker when one is free) up to ``max_retries`` times; then it is recorded as
failed -- ``{key: id, "failed": True, "error": reason, "attempts": n}`` plus
``failed_fields`` -- and the job goes on. Failed units count as done on
resume; delete their lines from the unit log to try them again.

:func:`run_units` with ``workers`` 0 or 1 runs in this process (no Ray);
with more it runs on a :class:`~pathprune.distributed.ray_backend.RayPool`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import PathpruneError

Worker = Callable[[Any], "tuple[dict, list[dict]] | list[tuple[dict, list[dict]]]"]


@dataclass
class UnitStats:
    """What a run did (this invocation only; units found done in ``out`` are ``skipped``)."""

    done: int = 0
    """Units written successfully."""
    failed: int = 0
    """Units recorded as failed after ``max_retries`` retries."""
    skipped: int = 0
    """Units already in ``out`` (a resumed run)."""
    retries: int = 0
    """Attempts repeated after an error or a worker death."""
    worker_deaths: int = 0
    """Worker processes lost mid-unit (each replaced by a fresh one)."""
    workers: int = 0
    """Workers that started."""
    errors: dict[str, str] = field(default_factory=dict)
    """Unit id -> reason, for the failed units."""


@dataclass
class _Pending:
    uid: str
    payload: Any
    attempts: int = 0
    reason: str = ""
    avoid: int | None = None  # the worker slot that last failed it


def one_line(err: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, shortened."""
    text = " ".join(str(err).split()) or "(no message)"
    text = f"{type(err).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rows(result) -> list[tuple[dict, list[dict]]]:
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict):
        return [result]
    if isinstance(result, list) and all(isinstance(r, tuple) and len(r) == 2 for r in result):
        return result
    raise PathpruneError("a worker must return (unit_row, item_rows) or a list of them, "
                         f"got {type(result).__name__}")


def _pending(units: Iterable[tuple[str, Any]], out, stats: UnitStats) -> list[_Pending]:
    seen, todo = set(), []
    for uid, payload in units:
        if uid in seen:
            raise PathpruneError(f"unit id given twice: {uid}")
        seen.add(uid)
        if uid in out.done:
            stats.skipped += 1
        else:
            todo.append(_Pending(uid, payload))
    return todo


class _Writer:
    """The driver's side: writes each unit once, counts, reports progress."""

    def __init__(self, out, stats: UnitStats, progress, failed_fields: dict | None, max_retries: int):
        self.out, self.stats, self.progress = out, stats, progress
        self.key = getattr(out, "key", "problem_id")
        self.failed_fields = dict(failed_fields or {})
        self.max_retries = max_retries

    def success(self, item: _Pending, result) -> None:
        rows = _rows(result)
        for row, items in rows:
            if self.key not in row:
                raise PathpruneError(f"unit row of {item.uid} lacks its id field {self.key!r}")
            if row[self.key] in self.out.done:
                raise PathpruneError(f"unit {row[self.key]} was produced twice")
        for row, items in rows:
            self.out.append(row, items)
        self.stats.done += len(rows)
        if self.progress:
            self.progress(len(rows))

    def failure(self, item: _Pending, reason: str) -> bool:
        """Count a failed attempt; True when the unit should be retried, else it is recorded as failed."""
        item.attempts += 1
        item.reason = reason
        if item.attempts <= self.max_retries:
            self.stats.retries += 1
            return True
        row = {**self.failed_fields, self.key: item.uid, "failed": True, "error": reason, "attempts": item.attempts}
        self.out.append(row, [])
        self.stats.failed += 1
        self.stats.errors[item.uid] = reason
        if self.progress:
            self.progress(1)
        return False


def run_units(units: Iterable[tuple[str, Any]], make_worker: Callable[[], Worker], out, *,
              workers: int = 0, ray_address: str = "local", resources: dict | None = None,
              max_retries: int = 2, threads_per_worker: int | None = None,
              progress: Callable[[int], None] | None = None, failed_fields: dict | None = None,
              start_timeout: float = 600.0) -> UnitStats:
    """Run every unit not yet in ``out`` and write its rows to ``out`` exactly once.

    Args:
        units: ``(unit_id, payload)`` pairs; ids must be unique (and equal the ``out.key`` field of the rows).
        make_worker: a picklable zero-argument factory (a class or ``functools.partial``), called once
            per worker process; it returns the callable that runs one payload.
        out: a RunLog-like sink (``done``, ``key``, ``append``).
        workers: 0 or 1 = in this process; N >= 2 = N Ray actors, each with its own worker.
        ray_address: ``local`` starts Ray on this machine (or reuses a running ``ray.init``);
            ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` joins a cluster.
        resources: per actor, e.g. ``{"num_cpus": 1, "num_gpus": 1}`` or custom resources
            ``{"resources": {"big_mem": 1}}``; default one CPU.
        max_retries: extra attempts of a unit after an error or a worker death.
        threads_per_worker: torch threads in each actor (default: its CPUs, at least 1).
        progress: called with the number of units written (done or failed).
        failed_fields: extra fields of failed unit rows (e.g. ``{"kept": False}``).
        start_timeout: seconds to wait for the first worker (e.g. GPUs the cluster lacks).
    """
    if workers < 0:
        raise PathpruneError(f"workers must be >= 0, got {workers}", parameter="workers", value=workers)
    if max_retries < 0:
        raise PathpruneError(f"max_retries must be >= 0, got {max_retries}", parameter="max_retries")
    if workers >= 2:
        from .ray_backend import RayPool

        with RayPool(make_worker, workers, ray_address=ray_address, resources=resources,
                     threads_per_worker=threads_per_worker, start_timeout=start_timeout) as pool:
            return pool.run(units, out, max_retries=max_retries, progress=progress, failed_fields=failed_fields)
    return run_units_here(units, make_worker(), out, max_retries=max_retries, progress=progress,
                          failed_fields=failed_fields)


def run_units_here(units: Iterable[tuple[str, Any]], worker: Worker, out, *, max_retries: int = 2,
                   progress: Callable[[int], None] | None = None, failed_fields: dict | None = None) -> UnitStats:
    """The in-process runner (same contract as the Ray pool, without surviving a crash of this process)."""
    stats = UnitStats(workers=1)
    writer = _Writer(out, stats, progress, failed_fields, max_retries)
    for item in _pending(units, out, stats):
        while True:
            try:
                result = worker(item.payload)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # noqa: BLE001 - a bad unit must not stop the job
                if writer.failure(item, one_line(err)):
                    continue
                break
            writer.success(item, result)
            break
    return stats


def default_threads(resources: dict | None) -> int:
    cpus = (resources or {}).get("num_cpus", 1) or 1
    return max(1, int(cpus))


def worker_env(threads: int) -> None:
    """Pin a worker process's compute threads (several workers on one machine must not fight over cores)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran in this process
        pass
