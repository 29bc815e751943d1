"""The request scheduler: a bounded queue and one worker thread that owns the model.

The worker takes the oldest waiting request, then every other waiting request
with the same batch key (same sampling, schedule and signal; or /classify), up
to ``max_batch_requests`` requests and ``max_batch_rows`` paths, and runs them
as one launch batch. Under load the queue fills while a batch runs, so merging
happens exactly when it pays.

Cancellation (client gone, timeout): a waiting request leaves the queue at
once; a running one has its paths dropped at the batch's next checkpoint
(its cache rows freed there); after the last checkpoint its paths finish with
the batch and the result is discarded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Hashable

from ..errors import PathpruneError
from .metrics import Metrics
from .runner import ClassifyWork, GenerateWork, ModelRunner

CLASSIFY = "classify"
"""The batch key of /classify requests (any two can share a batch)."""


class QueueFull(Exception):
    """The bounded queue has no room: answered 429."""


@dataclass(eq=False)
class Job:
    """One request's work, waiting or running, and the future its handler awaits."""

    key: Hashable
    work: GenerateWork | ClassifyWork
    rows: int
    """Batch rows the request occupies (paths x prompts, or /classify inputs)."""
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    """Set by the handler's thread, read by the worker's (a plain attribute write is atomic)."""
    batch_requests: int = 0
    """How many requests shared this one's launch batch (1 = alone)."""


class Scheduler:
    """Queue + worker thread. ``submit`` and ``cancel`` are called from the event loop."""

    def __init__(self, runner: ModelRunner, metrics: Metrics, *, max_queue: int, max_batch_requests: int,
                 max_batch_rows: int, threads: int | None = None):
        self.runner, self.metrics = runner, metrics
        self.max_queue, self.max_batch_requests, self.max_batch_rows = max_queue, max_batch_requests, max_batch_rows
        self.threads = threads
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._held = False
        self._thread = threading.Thread(target=self._loop, name="pathprune-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    @contextmanager
    def hold(self):
        """Take no new batch while inside (the running one finishes); requests keep queueing.

        For maintenance, and for tests that need requests to wait together.
        """
        with self._cond:
            self._held = True
        try:
            yield self
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.max_queue

    def busy(self) -> QueueFull:
        """The refusal a full queue answers (429), here and before a request's body is read."""
        return QueueFull(f"the server is busy ({self.max_queue} requests waiting); retry later")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def submit(self, key: Hashable, work: GenerateWork | ClassifyWork, rows: int) -> Job:
        loop = asyncio.get_running_loop()
        job = Job(key, work, rows, loop.create_future(), loop)
        with self._cond:
            if self.full:
                raise self.busy()
            self._queue.append(job)
            self.metrics.queue_depth.set(len(self._queue))
            self._cond.notify()
        return job

    def cancel(self, job: Job, reason: str) -> None:
        """Stop working for ``job`` (its result, if any, is dropped)."""
        if job.cancelled or job.future.done():
            return
        job.cancelled = True
        with self._cond:
            queued = job in self._queue
            if queued:
                self._queue.remove(job)
                self.metrics.queue_depth.set(len(self._queue))
        self.metrics.cancelled.labels(reason=reason, stage="queued" if queued else "running").inc()

    # -- worker thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        while True:
            with self._cond:
                while (not self._queue or self._held) and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                jobs = self._take()
                self.metrics.queue_depth.set(len(self._queue))
            start = time.perf_counter()
            for job in jobs:
                job.batch_requests = len(jobs)
                self.metrics.queue_seconds.observe(start - job.enqueued)
            self.metrics.batch_requests.observe(len(jobs))
            try:
                if jobs[0].key == CLASSIFY:
                    self._classify(jobs)
                else:
                    self._generate(jobs)
            except Exception as err:  # never let one batch kill the worker
                for job in jobs:
                    _settle(job, error=err)
            self.metrics.batch_seconds.observe(time.perf_counter() - start)

    def _take(self) -> list[Job]:
        """The oldest job and the compatible jobs behind it (caller holds the lock)."""
        first = self._queue.popleft()
        jobs, rows = [first], first.rows
        for job in list(self._queue):
            if len(jobs) >= self.max_batch_requests:
                break
            if job.key == first.key and rows + job.rows <= self.max_batch_rows:
                self._queue.remove(job)
                jobs.append(job)
                rows += job.rows
        return jobs

    def _generate(self, jobs: list[Job]) -> None:
        ready, encoded = [], []
        for job in jobs:
            try:
                encoded.append(self.runner.encode(job.work))
                ready.append(job)
            except PathpruneError as err:
                _settle(job, error=err)
        if not ready:
            return
        try:
            results = self.runner.generate(ready[0].key, [j.work for j in ready], encoded,
                                           cancelled=lambda w: ready[w].cancelled)
        except Exception as err:
            if len(ready) == 1:
                _settle(ready[0], error=err)
                return
            for job in ready:  # one request must not fail the others it was merged with: retry each alone
                self._generate([job])
            return
        for job, res in zip(ready, results):
            self.metrics.observe_results(res)
            _settle(job, value=res)

    def _classify(self, jobs: list[Job]) -> None:
        flat = [p for job in jobs for p in job.work.prefixes]  # checked by the handler already
        scores = self.runner.classify(flat)
        at = 0
        for job in jobs:
            k = len(job.work.prefixes)
            self.metrics.classify_inputs.inc(k)
            _settle(job, value=scores[at:at + k])
            at += k


def _settle(job: Job, value=None, error: BaseException | None = None) -> None:
    """Resolve the job's future on its event loop (the worker is another thread)."""

    def apply() -> None:
        if not job.future.done():
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

    try:
        job.loop.call_soon_threadsafe(apply)
    except RuntimeError:  # the loop is closed: the server is shutting down
        pass
