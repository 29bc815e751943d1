"""The FastAPI application: OpenAI-compatible completions with pruned parallel reasoning, STOP's /classify,
health, models and Prometheus metrics.

    >>> app = create_app(ServerConfig(model="testbed"))   # doctest: +SKIP
    >>> uvicorn.run(app, port=8000)                       # doctest: +SKIP

The routes are :mod:`.routes` (one router per concern) over a shared :class:`~.service.Service`; every error
is answered in one line in OpenAI's shape (:mod:`.errors`); bodies over the limit get 413 (:mod:`.middleware`).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from ..engine.schedule import Schedule
from .config import ServerConfig
from .errors import install_error_handlers
from .metrics import Metrics
from .middleware import BodyLimit, LoadShed, RequestMetrics
from .routes import ROUTERS
from .runner import ModelRunner
from .scheduler import Scheduler
from .service import Service


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

    @asynccontextmanager
    async def lifespan(_app):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.close()

    app = FastAPI(title="pathprune", summary="Pruned parallel reasoning, OpenAI-compatible", lifespan=lifespan)
    app.state.config, app.state.runner, app.state.scheduler, app.state.metrics = config, runner, scheduler, metrics
    app.state.service = Service(config, runner, scheduler, metrics)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(LoadShed, scheduler=scheduler)  # before the body is read
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: counts the 413s and 429s too
    return app
