"""OpenAI's ``/v1/chat/completions`` and ``/v1/completions``, answered by pruned parallel reasoning."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from ..schemas import ChatCompletionRequest, CompletionRequest
from ..service import Service, service_of

router = APIRouter()


def sse(events) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, service: Service = Depends(service_of)):
    messages = tuple({"role": m.role, "content": m.content} for m in body.messages)
    outcome = await service.generate(body, [messages], request)
    if body.stream:
        return sse(outcome.chat_stream(bool(body.stream_options and body.stream_options.include_usage)))
    return outcome.chat()


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request, service: Service = Depends(service_of)):
    outcome = await service.generate(body, body.prompts(), request)
    if body.stream:
        return sse(outcome.completion_stream(bool(body.stream_options and body.stream_options.include_usage)))
    return outcome.completion()
