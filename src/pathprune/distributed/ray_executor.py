"""A pool of Ray actors, one model replica each, that runs idempotent units exactly once.

The Ray executor. The driver keeps one unit in flight per actor and writes results
as they come back (see :mod:`pathprune.distributed.units` for the contract). An actor that
dies mid-unit (process killed, out of memory, node lost) is replaced by a fresh
one; its unit goes back to the front of the queue for the next free actor,
preferably another one. Actors that cannot be placed (resources the cluster
lacks right now) simply never take work; the job fails only when none starts
within ``start_timeout``.

    >>> with RayPool(partial(LabelWorker, "testbed", cfg), workers=2) as pool:   # doctest: +SKIP
    ...     fp = pool.call_one("fingerprint")
    ...     stats = pool.run(units, run_log)
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import PathpruneError
from .units import UnitStats, Writer, default_threads, one_line, pending_units, worker_env

ACTOR_PREFIX = "pathprune-worker"


class _UnitActor:
    """Holds one worker (model replica). Threaded (2) so ``pid`` answers while a unit runs."""

    def __init__(self, make_worker, threads: int):
        self.error, self.threads = None, threads
        try:
            worker_env(threads)
            self.worker = make_worker()
        except Exception as err:  # noqa: BLE001 - reported by ready(), the pool aborts with it
            self.error = one_line(err)

    def ready(self) -> dict:
        return {"pid": os.getpid(), "node": socket.gethostname(), "error": self.error}

    def pid(self) -> int:
        return os.getpid()

    def run(self, payload):
        import torch

        if torch.get_num_threads() != self.threads:  # methods run on a pool thread, not the one __init__ ran on
            torch.set_num_threads(self.threads)
        return self.worker(payload)

    def call(self, method: str, *args):
        return getattr(self.worker, method)(*args)


def check_address(address: str) -> None:
    """Fail fast (one line) on an address nothing listens at, instead of Ray's long retries."""
    if address in ("local", "auto"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise PathpruneError(f"ray address must be local, auto, HOST:PORT or ray://HOST:PORT, got {address!r}",
                             parameter="ray_address", value=address)
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as err:
        raise PathpruneError(f"no Ray cluster at {address} ({err.strerror or err})",
                             parameter="ray_address", value=address) from None


class RayPool:
    """``workers`` Ray actors built from ``make_worker``; a context manager (actors and a Ray it started
    are torn down on exit). See :func:`pathprune.distributed.runner.run_units` for the arguments."""

    def __init__(self, make_worker: Callable[[], Any], workers: int, *, ray_address: str = "local",
                 resources: dict | None = None, threads_per_worker: int | None = None,
                 start_timeout: float = 600.0):
        if workers < 1:
            raise PathpruneError(f"workers must be >= 1, got {workers}", parameter="workers", value=workers)
        self.make_worker, self.workers, self.address = make_worker, workers, ray_address
        self.resources = {"num_cpus": 1, **(resources or {})}
        self.threads = threads_per_worker or default_threads(self.resources)
        self.start_timeout = start_timeout
        self._started_ray = False
        self._temp_dir: str | None = None
        self._actors: dict[int, Any] = {}
        self._starting: dict[Any, int] = {}  # ready() ref -> slot
        self._ready: dict[int, dict] = {}  # slot -> {"pid", "node"}
        self._free: list[int] = []
        self._tag = uuid.uuid4().hex[:8]
        self._generation = 0
        self._deaths_at_start = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> RayPool:
        self._connect()
        try:
            for slot in range(self.workers):
                self._spawn(slot)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect(self) -> None:
        try:
            import ray
        except ImportError:
            raise PathpruneError("the Ray backend needs ray: pip install 'pathprune[ray]'") from None
        check_address(self.address)
        if ray.is_initialized():
            return  # a caller (a notebook, the tests) owns the connection
        kwargs = dict(include_dashboard=False, log_to_driver=False, namespace="pathprune",
                      configure_logging=True, logging_level=logging.ERROR)
        try:
            if self.address == "local":
                # a short private temp dir: Ray's socket paths must stay under 107 characters
                self._temp_dir = tempfile.mkdtemp(prefix="ppray-", dir=os.environ.get("RAY_TMPDIR", "/tmp"))
                cpus = max(os.cpu_count() or 1, int(self.workers * (self.resources.get("num_cpus") or 0)) or 1)
                ray.init(address="local", num_cpus=cpus, _temp_dir=self._temp_dir, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except Exception as err:  # noqa: BLE001
            self._cleanup_temp()
            raise PathpruneError(f"could not start or join Ray at {self.address}: {one_line(err)}") from None
        self._started_ray = True
        self._check_fits(ray.cluster_resources())

    def _check_fits(self, total: dict) -> None:
        need = {"CPU": self.resources.get("num_cpus") or 0, "GPU": self.resources.get("num_gpus") or 0,
                **(self.resources.get("resources") or {})}
        short = [f"{k} {v:g} (cluster has {total.get(k, 0):g})" for k, v in need.items() if v > total.get(k, 0)]
        if short and self.address == "local":  # a remote cluster may autoscale; start_timeout guards it
            self.close()
            raise PathpruneError(f"one worker needs more than this machine has: {', '.join(short)}")

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            for actor in self._actors.values():
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self._actors.clear()
        self._starting.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        self._cleanup_temp()

    def _cleanup_temp(self) -> None:
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def _spawn(self, slot: int) -> None:
        import ray

        self._generation += 1
        opts = {k: v for k, v in self.resources.items() if k in ("num_cpus", "num_gpus", "memory", "resources")}
        cls = ray.remote(_UnitActor).options(
            name=f"{ACTOR_PREFIX}-{self._tag}-{slot}-{self._generation}", max_restarts=0, max_task_retries=0,
            max_concurrency=2, **opts)
        actor = cls.remote(self.make_worker, self.threads)
        self._actors[slot] = actor
        self._starting[actor.ready.remote()] = slot

    def _replace(self, slot: int) -> None:
        import ray

        old = self._actors.pop(slot, None)
        if old is not None:
            try:
                ray.kill(old, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._ready.pop(slot, None)
        self._spawn(slot)

    def _on_started(self, ref, slot: int) -> None:
        """A ready() probe came back: the actor is free, or it is dead/broken."""
        import ray

        del self._starting[ref]
        try:
            info = ray.get(ref)
        except ray.exceptions.RayError as err:  # the process died while starting: try a fresh one
            self._deaths_at_start += 1
            if self._deaths_at_start > 3 * self.workers:
                raise PathpruneError(f"workers keep dying while starting: {one_line(err)}") from None
            self._replace(slot)
            return
        if info["error"]:
            raise PathpruneError(f"a worker could not start: {info['error']}")
        self._ready[slot] = info
        self._free.append(slot)

    def _wait_started(self, deadline: float) -> None:
        import ray

        while not self._ready:
            if not self._starting:
                raise PathpruneError("no worker could start")
            left = deadline - time.monotonic()
            if left <= 0:
                raise PathpruneError(f"no worker started within {self.start_timeout:g} s; does the cluster have "
                                     f"the resources one worker asks for ({self.resources})?")
            done, _ = ray.wait(list(self._starting), num_returns=1, timeout=min(left, 5.0))
            for ref in done:
                self._on_started(ref, self._starting[ref])

    # -- API ---------------------------------------------------------------------------------------
    def wait_ready(self, n: int | None = None) -> int:
        """Block until ``n`` workers (default: all) have started; returns how many have."""
        import ray

        self._wait_started(time.monotonic() + self.start_timeout)
        deadline = time.monotonic() + self.start_timeout
        while len(self._ready) < (n or self.workers) and self._starting and time.monotonic() < deadline:
            done, _ = ray.wait(list(self._starting), num_returns=1, timeout=5.0)
            for ref in done:
                self._on_started(ref, self._starting[ref])
        return len(self._ready)

    def call_one(self, method: str, *args):
        """Call ``worker.method(*args)`` on one started worker (e.g. a model fingerprint for the run config)."""
        import ray

        self._wait_started(time.monotonic() + self.start_timeout)
        slot = next(iter(self._ready))
        try:
            return ray.get(self._actors[slot].call.remote(method, *args))
        except ray.exceptions.RayTaskError as err:
            raise PathpruneError(f"worker call {method} failed: {one_line(err.cause or err)}") from None

    def run(self, units: Iterable[tuple[str, Any]], out, *, max_retries: int = 2,
            progress: Callable[[int], None] | None = None, failed_fields: dict | None = None) -> UnitStats:
        """Run every unit not in ``out.done``; write each unit's rows once, as it finishes."""
        import ray

        stats = UnitStats()
        writer = Writer(out, stats, progress, failed_fields, max_retries)
        queue = deque(pending_units(units, out, stats))
        inflight: dict[Any, tuple[int, Any]] = {}  # run() ref -> (slot, pending unit)
        self._wait_started(time.monotonic() + self.start_timeout)
        while queue or inflight:
            while queue and self._free:
                slot = self._free.pop(0)
                # retry elsewhere: skip units this slot just failed while another unit is waiting
                pick = next((i for i, it in enumerate(queue) if it.avoid != slot), 0)
                item = queue[pick]
                del queue[pick]
                inflight[self._actors[slot].run.remote(item.payload)] = (slot, item)
            if not inflight and not self._starting:
                raise PathpruneError("every worker was lost and none could be replaced")
            done, _ = ray.wait(list(inflight) + list(self._starting), num_returns=1, timeout=5.0)
            for ref in done:
                if ref in self._starting:
                    self._on_started(ref, self._starting[ref])
                    continue
                slot, item = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as err:  # the unit raised; the worker is fine
                    self._free.append(slot)
                    reason = one_line(err.cause if err.cause is not None else err)
                except ray.exceptions.RayError as err:  # the worker died mid-unit: replace it
                    stats.worker_deaths += 1
                    reason = "worker died: " + one_line(err).split(" class_name:")[0]
                    self._replace(slot)
                else:
                    self._free.append(slot)
                    writer.success(item, result)
                    continue
                item.avoid = slot
                if writer.failure(item, reason):
                    queue.appendleft(item)
        stats.workers = len(self._ready)
        return stats
