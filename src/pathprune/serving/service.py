"""What every route shares: the config, the loaded model (:class:`ModelRunner`), the batching scheduler and the
metrics; checks a request against the server's limits, submits its work and waits for it."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, replace

from fastapi import Request

from ..engine.sampling import SamplingParams
from ..engine.schedule import Schedule, Stage
from ..errors import PathpruneError
from .config import ServerConfig
from .errors import ClientGone, RequestTimeout
from .metrics import Metrics
from .responses import Outcome
from .runner import GenerateSpec, GenerateWork, ModelRunner
from .scheduler import Job, Scheduler


def resolve_schedule(config: ServerConfig, body, n: int, max_tokens: int) -> Schedule:
    """The request's schedule: its own, its keep/checkpoint, or the server default fitted to N and max_tokens."""
    if body.schedule is not None:
        text = body.schedule.strip()
        return Schedule.parse(text).check(n, max_tokens)
    default = Schedule.parse(config.default_schedule)
    if body.keep is not None or body.checkpoint is not None:
        first = default.stages[0] if default.stages else None
        length = body.checkpoint or (first.prefix_tokens if first else None)
        keep = body.keep or (min(first.keep, n) if first and first.keep else None)
        if length is None or keep is None:
            raise PathpruneError("set both keep and checkpoint: this server has no default schedule",
                                 parameter="keep")
        return Schedule((Stage(length, keep=keep),)).check(n, max_tokens)
    # the default adapts instead of failing: keeps capped at N, checkpoints past max_tokens dropped
    stages = tuple(replace(s, keep=min(s.keep, n)) if s.keep is not None else s
                   for s in default.stages if s.prefix_tokens < max_tokens)
    return Schedule(stages).check(n, max_tokens)


@dataclass
class Service:
    config: ServerConfig
    runner: ModelRunner
    scheduler: Scheduler
    metrics: Metrics

    def check_model(self, name: str, extra: set[str] = frozenset()) -> None:
        """``name`` must be the served model's (or, for ``extra`` routes, one of those names)."""
        names = {self.config.name} | extra
        if name not in names:
            raise PathpruneError(f"unknown model {name!r}; this server serves {sorted(names)}",
                                 parameter="model", value=name)

    async def wait(self, job: Job, request: Request, timeout: float):
        """The job's result; cancels the job when the client leaves or the deadline passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    self.scheduler.cancel(job, "timeout")
                    raise RequestTimeout(f"request timed out after {timeout:g} s")
                done, _ = await asyncio.wait({job.future}, timeout=min(0.05, remaining))
                if done:
                    return job.future.result()
                if await request.is_disconnected():
                    self.scheduler.cancel(job, "disconnect")
                    raise ClientGone()
        finally:  # e.g. the handler itself cancelled at shutdown
            if not job.future.done():
                self.scheduler.cancel(job, "aborted")

    async def generate(self, body, prompts: list, request: Request) -> Outcome:
        """Check a completion request against the limits, run it pruned, and wait for its outcome."""
        config, runner = self.config, self.runner
        self.check_model(body.model)
        n = body.paths or config.default_paths
        if n > config.max_paths:
            raise PathpruneError(f"paths must be <= {config.max_paths}, got {n}", parameter="paths", value=n)
        max_tokens = body.token_limit or config.default_max_tokens
        if max_tokens > config.max_tokens:
            raise PathpruneError(f"max_tokens must be <= {config.max_tokens}, got {max_tokens}",
                                 parameter="max_tokens", value=max_tokens)
        if not prompts:
            raise PathpruneError("prompt is empty", parameter="prompt")
        if len(prompts) > config.max_prompts:
            raise PathpruneError(f"at most {config.max_prompts} prompts per request, got {len(prompts)}",
                                 parameter="prompt")
        for i, p in enumerate(prompts):
            if isinstance(p, list):
                runner.check_ids(p, "prompt" if len(prompts) == 1 else f"prompt {i}")
        schedule = resolve_schedule(config, body, n, max_tokens)
        signal = body.signal or runner.default_signal
        runner.check_signal(signal)
        delimiter = {} if body.step_delimiter is None else {"step_delimiter": body.step_delimiter}
        sampling = SamplingParams(n=n, temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                  max_new_tokens=max_tokens, seed=0, **delimiter)  # the seed goes in problem keys
        seed = body.seed if body.seed is not None else secrets.randbits(62)
        spec = GenerateSpec(sampling, str(schedule), signal)
        work = GenerateWork(spec, tuple(prompts), seed, body.answer_kind or runner.answer_kind)
        job = self.scheduler.submit(spec, work, rows=n * len(prompts))
        timeout = min(body.timeout or config.request_timeout, config.request_timeout)
        results = await self.wait(job, request, timeout)
        info = {"paths": n, "schedule": str(schedule) or "none", "signal": signal, "seed": seed}
        return Outcome(results, model=body.model, aggregation=body.aggregation, return_paths=body.return_paths,
                       info=info, batch_requests=job.batch_requests)


def service_of(request: Request) -> Service:
    """The app's :class:`Service` (a route dependency)."""
    return request.app.state.service
