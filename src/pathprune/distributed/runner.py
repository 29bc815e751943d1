"""The one entry point: run idempotent units exactly once, in this process or on Ray actors."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import PathpruneError
from .local import LocalPool
from .ray_executor import RayPool
from .units import UnitStats, Worker


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
        out: a RunLog-like sink (``done``, ``key``, ``append``), or a function ``open_out(call_one) -> sink``
            called once a worker has started, for a sink whose config needs a worker's answer
            (``call_one("fingerprint")`` calls ``worker.fingerprint()`` on one replica; the driver loads no model).
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
    if workers >= 2:  # RayPool imports ray only when it connects
        pool = RayPool(make_worker, workers, ray_address=ray_address, resources=resources,
                       threads_per_worker=threads_per_worker, start_timeout=start_timeout)
    else:
        pool = LocalPool(make_worker)
    with pool:
        sink = out if hasattr(out, "append") else out(pool.call_one)
        return pool.run(units, sink, max_retries=max_retries, progress=progress, failed_fields=failed_fields)
