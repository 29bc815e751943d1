"""OpenAI response and stream-chunk bodies built from the engine's results.

``usage`` counts every token the request truly cost: ``completion_tokens`` is
every token any path generated (pruned prefixes included, the paper's "total
tokens"), ``prompt_tokens`` every token read without being generated (prompts,
prefilled once, plus the signal's check tokens). The engine's breakdown is in
the ``pathprune`` extension field.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from typing import Iterator

from ..engine.accounting import TokenUsage
from ..engine.pruner import PathOutput, RequestOutput
from .aggregate import Vote, vote
from .metrics import tokens_saved


def usage_of(results: list[RequestOutput]) -> tuple[dict, TokenUsage]:
    total = sum((r.usage for r in results), TokenUsage())
    read = total.prompt + total.check + total.reencoded
    return {"prompt_tokens": read, "completion_tokens": total.generated,
            "total_tokens": read + total.generated}, total


def _path_dict(p: PathOutput) -> dict:
    scores = [s if math.isfinite(s) else None for s in p.scores]  # JSON has no infinities (NaN scores rank -inf)
    return {"index": p.index, "tokens": p.num_tokens, "kept": p.kept, "pruned_at": p.pruned_at,
            "finished": p.finished, "answer": p.answer, "scores": scores, "checked_at": p.checked_at, "text": p.text}


def finish_reason(p: PathOutput) -> str:
    return "stop" if p.finished else "length"


class Outcome:
    """One request's results, voted, ready to render as any of the response shapes."""

    def __init__(self, results: list[RequestOutput], *, model: str, aggregation: str, return_paths: bool,
                 info: dict, batch_requests: int):
        self.results, self.model = results, model
        self.votes: list[Vote] = [vote(r.paths, aggregation) for r in results]
        self.usage, total = usage_of(results)
        self.id, self.created = uuid.uuid4().hex, int(time.time())
        self.extension = {
            **info, "aggregation": aggregation, "batch_requests": batch_requests,
            "usage": total.as_dict(), "tokens_saved_estimate": sum(tokens_saved(r) for r in results),
            "results": [{"answer": v.answer, "votes": v.weights, "path": v.path.index,
                         "paths_kept": sum(p.kept for p in r.paths),
                         **({"paths": [_path_dict(p) for p in r.paths]} if return_paths else {})}
                        for v, r in zip(self.votes, results)],
        }

    # -- whole responses -------------------------------------------------------------------
    def chat(self) -> dict:
        v = self.votes[0]
        return {"id": f"chatcmpl-{self.id}", "object": "chat.completion", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": v.path.text},
                             "finish_reason": finish_reason(v.path), "logprobs": None}],
                "usage": self.usage, "pathprune": self.extension}

    def completion(self) -> dict:
        return {"id": f"cmpl-{self.id}", "object": "text_completion", "created": self.created, "model": self.model,
                "choices": [{"index": i, "text": v.path.text, "finish_reason": finish_reason(v.path),
                             "logprobs": None} for i, v in enumerate(self.votes)],
                "usage": self.usage, "pathprune": self.extension}

    # -- server-sent events ------------------------------------------------------------------
    def chat_stream(self, include_usage: bool) -> Iterator[str]:
        base = {"id": f"chatcmpl-{self.id}", "object": "chat.completion.chunk", "created": self.created,
                "model": self.model}
        v = self.votes[0]
        yield _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})
        for piece in pieces(v.path.text):
            yield _sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason(v.path)}],
                    "pathprune": self.extension})
        if include_usage:
            yield _sse({**base, "choices": [], "usage": self.usage})
        yield "data: [DONE]\n\n"

    def completion_stream(self, include_usage: bool) -> Iterator[str]:
        base = {"id": f"cmpl-{self.id}", "object": "text_completion", "created": self.created, "model": self.model}
        for i, v in enumerate(self.votes):
            for piece in pieces(v.path.text):
                yield _sse({**base, "choices": [{"index": i, "text": piece, "finish_reason": None,
                                                 "logprobs": None}]})
            last = {**base, "choices": [{"index": i, "text": "", "finish_reason": finish_reason(v.path),
                                         "logprobs": None}]}
            yield _sse({**last, "pathprune": self.extension} if i == len(self.votes) - 1 else last)
        if include_usage:
            yield _sse({**base, "choices": [], "usage": self.usage})
        yield "data: [DONE]\n\n"


_PIECE = re.compile(r"\s*\S+")


def pieces(text: str) -> list[str]:
    """Word-sized stream deltas that concatenate back to ``text`` exactly."""
    out = _PIECE.findall(text)
    tail = text[sum(map(len, out)):]
    if tail:
        out.append(tail)
    return out


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"
