"""The in-process executor: one worker in this process, the same contract as the Ray pool
(:mod:`pathprune.distributed.units`), without surviving a crash of this process."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .units import UnitStats, Worker, Writer, one_line, pending_units


class LocalPool:
    """One worker built from ``make_worker`` in this process; a context manager like
    :class:`~pathprune.distributed.ray_executor.RayPool`."""

    def __init__(self, make_worker: Callable[[], Worker]):
        self.make_worker = make_worker
        self.worker: Worker | None = None

    def __enter__(self) -> LocalPool:
        self.worker = self.make_worker()
        return self

    def __exit__(self, *exc) -> None:
        self.worker = None

    def call_one(self, method: str, *args):
        """Call ``worker.method(*args)`` (e.g. a model fingerprint for the run config)."""
        return getattr(self.worker, method)(*args)

    def run(self, units: Iterable[tuple[str, Any]], out, *, max_retries: int = 2,
            progress: Callable[[int], None] | None = None, failed_fields: dict | None = None) -> UnitStats:
        return run_units_here(units, self.worker, out, max_retries=max_retries, progress=progress,
                              failed_fields=failed_fields)


def run_units_here(units: Iterable[tuple[str, Any]], worker: Worker, out, *, max_retries: int = 2,
                   progress: Callable[[int], None] | None = None, failed_fields: dict | None = None) -> UnitStats:
    """Run every unit not in ``out.done`` with ``worker``, in this process; write each unit's rows once."""
    stats = UnitStats(workers=1)
    writer = Writer(out, stats, progress, failed_fields, max_retries)
    for item in pending_units(units, out, stats):
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
