"""The FastAPI application: OpenAI-compatible completions with pruned parallel reasoning, STOP's /classify,
health, models and Prometheus metrics.

    >>> app = create_app(ServerConfig(model="testbed"))   # doctest: +SKIP
    >>> uvicorn.run(app, port=8000)                       # doctest: +SKIP

Every invalid request is answered 400 with a one-line reason in OpenAI's error
shape; bodies over the limit 413; a full queue 429; a request past its timeout 504.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine.sampling import SamplingParams
from ..engine.schedule import Schedule, Stage
from ..errors import PathpruneError
from .config import ServerConfig
from .metrics import Metrics
from .middleware import BodyLimit, RequestMetrics, error_body
from .responses import Outcome
from .runner import GenerateSpec, GenerateWork, ModelRunner
from .scheduler import CLASSIFY, Job, QueueFull, Scheduler
from .schemas import ChatCompletionRequest, ClassifyRequest, CompletionRequest


class _Timeout(Exception):
    pass


class _ClientGone(Exception):
    pass


def _error(status: int, message: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, " ".join(str(message).split()), param), status_code=status,
                        headers=headers)


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    """The first validation error as one line, and the field it concerns."""
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
    if first["type"] == "json_invalid":
        return f"invalid JSON: {first.get('ctx', {}).get('error', 'cannot parse the body')}", None
    if first["type"] == "missing" and not loc:
        return "a JSON body is required", None
    if first["type"] == "extra_forbidden":
        return f"unknown field {loc!r} (not supported by this server)", loc
    msg = first["msg"].removeprefix("Value error, ")
    return (f"{loc}: {msg}" if loc else msg), loc or None


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
    stages = tuple(Stage(s.prefix_tokens, keep=min(s.keep, n)) if s.keep is not None else s
                   for s in default.stages if s.prefix_tokens < max_tokens)
    return Schedule(stages).check(n, max_tokens)


def create_app(config: ServerConfig, runner: ModelRunner | None = None) -> FastAPI:
    """Build the app; the model loads now (``runner`` lets several apps share one loaded model in tests)."""
    if config.default_schedule not in ("", "none"):
        Schedule.parse(config.default_schedule)
    runner = runner or ModelRunner(config)
    if config.default_signal:
        runner.check_signal(config.default_signal)
    metrics = Metrics()
    scheduler = Scheduler(runner, metrics, max_queue=config.max_queue, max_batch_requests=config.max_batch_requests,
                          max_batch_rows=config.max_batch_rows, threads=config.threads)
    names = {config.name}

    @asynccontextmanager
    async def lifespan(_app):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.close()

    app = FastAPI(title="pathprune", summary="Pruned parallel reasoning, OpenAI-compatible", lifespan=lifespan)
    app.state.config, app.state.runner, app.state.scheduler, app.state.metrics = config, runner, scheduler, metrics

    # -- errors: one line each, OpenAI's shape ------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _bad_body(_request, err: RequestValidationError):
        message, param = _validation_message(err)
        return _error(400, message, param)

    @app.exception_handler(PathpruneError)
    async def _bad_value(_request, err: PathpruneError):
        return _error(400, str(err), err.parameter)

    @app.exception_handler(QueueFull)
    async def _busy(_request, err: QueueFull):
        return _error(429, str(err), headers={"Retry-After": "1"})

    @app.exception_handler(_Timeout)
    async def _late(_request, err: _Timeout):
        return _error(504, str(err))

    @app.exception_handler(_ClientGone)
    async def _gone(_request, _err):
        return Response(status_code=499)  # nobody reads it; nginx's code for "client closed request"

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, err: StarletteHTTPException):
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def _internal(_request, err: Exception):
        return _error(500, f"internal error: {type(err).__name__}: {err}")

    # -- helpers -------------------------------------------------------------------------------
    def check_model(name: str, extra: set[str] = frozenset()) -> None:
        if name not in names | extra:
            raise PathpruneError(f"unknown model {name!r}; this server serves {sorted(names | extra)}",
                                 parameter="model", value=name)

    async def wait(job: Job, request: Request, timeout: float):
        """The job's result; cancels the job when the client leaves or the deadline passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    scheduler.cancel(job, "timeout")
                    raise _Timeout(f"request timed out after {timeout:g} s")
                done, _ = await asyncio.wait({job.future}, timeout=min(0.05, remaining))
                if done:
                    return job.future.result()
                if await request.is_disconnected():
                    scheduler.cancel(job, "disconnect")
                    raise _ClientGone()
        finally:  # e.g. the handler itself cancelled at shutdown
            if not job.future.done():
                scheduler.cancel(job, "aborted")

    async def generate(body, prompts: list, request: Request) -> Outcome:
        check_model(body.model)
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
        sampling = SamplingParams(n=n, temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                  max_new_tokens=max_tokens, seed=0)  # the request's seed goes in its problem keys
        seed = body.seed if body.seed is not None else secrets.randbits(62)
        spec = GenerateSpec(sampling, str(schedule), signal)
        work = GenerateWork(spec, tuple(prompts), seed, body.answer_kind or runner.answer_kind)
        job = scheduler.submit(spec, work, rows=n * len(prompts))
        timeout = min(body.timeout or config.request_timeout, config.request_timeout)
        results = await wait(job, request, timeout)
        info = {"paths": n, "schedule": str(schedule) or "none", "signal": signal, "seed": seed}
        return Outcome(results, model=body.model, aggregation=body.aggregation, return_paths=body.return_paths,
                       info=info, batch_requests=job.batch_requests)

    def sse(events) -> StreamingResponse:
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # -- routes ----------------------------------------------------------------------------------
    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        messages = tuple({"role": m.role, "content": m.content} for m in body.messages)
        outcome = await generate(body, [messages], request)
        if body.stream:
            return sse(outcome.chat_stream(bool(body.stream_options and body.stream_options.include_usage)))
        return outcome.chat()

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        outcome = await generate(body, body.prompts(), request)
        if body.stream:
            return sse(outcome.completion_stream(bool(body.stream_options and body.stream_options.include_usage)))
        return outcome.completion()

    @app.post("/classify")
    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest, request: Request):
        check_model(body.model, {config.stop_name})
        if len(body.input) > config.max_classify_inputs:
            raise PathpruneError(f"at most {config.max_classify_inputs} inputs per request, got {len(body.input)}",
                                 parameter="input")
        work = runner.prepare_classify(body.input, body.assess_tail_len, body.truncate_prompt_tokens)
        job = scheduler.submit(CLASSIFY, work, rows=len(work.prefixes))
        probs = await wait(job, request, config.request_timeout)
        read = sum(len(p) + runner.n_stop for p in work.prefixes)
        return {"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
                "model": body.model,
                "data": [{"index": i, "probs": [1.0 - p, p], "num_classes": 2} for i, p in enumerate(probs)],
                "usage": {"prompt_tokens": read, "total_tokens": read}}

    @app.get("/health")
    async def health():
        ok = scheduler.alive
        return JSONResponse({"status": "ok" if ok else "down", "model": config.name, "queue_depth": scheduler.depth},
                            status_code=200 if ok else 503)

    @app.get("/v1/models")
    async def models():
        served = [config.name] + ([config.stop_name] if runner.stop_module is not None else [])
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "pathprune"}
                                           for name in served]}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: counts the 413s too
    return app
