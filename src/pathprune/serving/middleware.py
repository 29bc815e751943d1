"""ASGI middleware: load shedding, the request-body size limit, and per-request metrics."""

from __future__ import annotations

import json
import time

from .metrics import Metrics

ENDPOINTS = {"/v1/chat/completions", "/v1/completions", "/classify", "/v1/classify", "/health", "/v1/models",
             "/metrics"}


def error_body(status: int, message: str, param: str | None = None) -> dict:
    """OpenAI's error shape (the ``openai`` client reads ``error.message``)."""
    kind = {400: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
            504: "timeout"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


WORK = {"/v1/chat/completions", "/v1/completions", "/classify", "/v1/classify"}
"""The endpoints that queue work for the model."""


async def send_error(send, status: int, message: str, headers: tuple = ()) -> None:
    body = json.dumps(error_body(status, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class LoadShed:
    """Answer 429 to work requests while the queue is full, before their body is read, parsed or tokenised.

    Under overload most requests are refused; refusing them after validation and tokenisation took enough CPU
    from the engine that goodput fell (256 clients honouring Retry-After: 20 requests/s against 31 at 64, docs/
    vllm.md). The scheduler's own check stays for the requests that race past this one."""

    def __init__(self, app, scheduler):
        self.app, self.scheduler = app, scheduler

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in WORK and self.scheduler.full:
            return await send_error(send, 429, str(self.scheduler.busy()), ((b"retry-after", b"1"),))
        return await self.app(scope, receive, send)


class BodyLimit:
    """Answer 413 to bodies over ``max_bytes``: at once from Content-Length, or while a chunked body streams in."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._reject(send)
        seen, over = 0, False

        async def limited_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request" and not over:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # cut the body short; the app's answer to it is replaced below
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message):
            if not over:
                return await send(message)
            if message["type"] == "http.response.start":
                await self._reject(send)

        await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, send) -> None:
        await send_error(send, 413, f"request body exceeds the limit of {self.max_bytes} bytes")


class RequestMetrics:
    """Count every answer by endpoint and status, and time it to its last byte (streams included)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        start, status = time.perf_counter(), 500

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.requests.labels(endpoint=endpoint, code=str(status)).inc()
            if endpoint not in ("/metrics", "/health"):
                self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)
