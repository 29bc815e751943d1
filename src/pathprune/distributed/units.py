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

This module holds the pieces both executors share (the stats, the queue of
pending units, the writer); :mod:`.local` runs units in this process,
:mod:`.ray_executor` on a pool of Ray actors, and :func:`.runner.run_units`
picks one.
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
class Pending:
    """A unit not yet written, with its attempts so far."""

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


def pending_units(units: Iterable[tuple[str, Any]], out, stats: UnitStats) -> list[Pending]:
    """The units not yet in ``out`` (counted in ``stats.skipped`` otherwise); ids must be unique."""
    seen, todo = set(), []
    for uid, payload in units:
        if uid in seen:
            raise PathpruneError(f"unit id given twice: {uid}")
        seen.add(uid)
        if uid in out.done:
            stats.skipped += 1
        else:
            todo.append(Pending(uid, payload))
    return todo


class Writer:
    """The driver's side: writes each unit once, counts, reports progress."""

    def __init__(self, out, stats: UnitStats, progress, failed_fields: dict | None, max_retries: int):
        self.out, self.stats, self.progress = out, stats, progress
        self.key = getattr(out, "key", "problem_id")
        self.failed_fields = dict(failed_fields or {})
        self.max_retries = max_retries

    def success(self, item: Pending, result) -> None:
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

    def failure(self, item: Pending, reason: str) -> bool:
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
