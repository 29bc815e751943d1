"""One vLLM engine's step loop, shared by every path request and check in flight.

``LLM.generate`` runs the engine until *every* request in it has finished, so it can serve only one batch at a
time: a check that calls it while other requests decode would run them to the end (and take their outputs).
pathprune therefore drives the engine itself through vLLM's public ``LLMEngine`` API (``add_request``,
``step``, ``abort_request``): requests are submitted under pathprune's own ids, each ``step`` decodes every
request in flight, and finished outputs wait here until their owner collects them. A per-request check, or
STOP's one-token reads during it, then waits only for its own requests while the others keep decoding.

A request may also be *watched* (a step checkpoint): its tokens stream back after every step, and when the
watch says the path has reached its pause the request is aborted there and handed out as finished, truncated
to the pause (tokens past it, if an engine step produced any, are dropped: per-path random streams draw them
again on resume).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from types import SimpleNamespace

Watch = Callable[[list[int], int], "int | None"]
"""``watch(tokens, checked)``: the request's generated tokens so far and how many were already seen; the
number of tokens to keep when the path pauses within them, else None."""


class _Stream:
    """A watched request's output, accumulated from vLLM's per-step deltas."""

    def __init__(self, prompt_ids: list[int], watch: Watch):
        self.prompt_ids, self.watch = prompt_ids, watch
        self.tokens: list[int] = []
        self.logprobs: list = []
        self.cached: int | None = None
        self.finish_reason = None

    def add(self, out) -> int | None:
        """Take one delta; the pause point when the watch finds it in the new tokens."""
        comp, seen = out.outputs[0], len(self.tokens)
        self.tokens += list(comp.token_ids)
        self.logprobs += list(comp.logprobs or [])
        self.cached = out.num_cached_tokens if out.num_cached_tokens is not None else self.cached
        self.finish_reason = comp.finish_reason
        return None if len(self.tokens) == seen else self.watch(self.tokens, seen)

    def output(self, keep: int | None = None) -> SimpleNamespace:
        """A finished ``RequestOutput``'s fields, cut to ``keep`` tokens (a pause: not finished by vLLM)."""
        tokens, logprobs, reason = self.tokens, self.logprobs, self.finish_reason
        if keep is not None:
            tokens, logprobs, reason = tokens[:keep], logprobs[:keep], None
        comp = SimpleNamespace(token_ids=tokens, logprobs=logprobs or None, finish_reason=reason)
        return SimpleNamespace(prompt_token_ids=self.prompt_ids, num_cached_tokens=self.cached, outputs=[comp],
                               finished=True)


class EngineLoop:
    """Submit requests to a vLLM ``LLM``'s engine, step it, and hand each finished output to its owner."""

    def __init__(self, llm) -> None:
        self.engine = llm.llm_engine
        self._ids = itertools.count()
        self._finished: dict[str, object] = {}
        self.in_flight: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self.on_step = None
        """``on_step(seconds, in_flight_ids)`` after every engine step (time accounting of the caller)."""

    def submit(self, prompt_ids: list[int], params, watch: Watch | None = None) -> str:
        """Add one request (final output only, or every step's tokens to ``watch``); its id."""
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params.output_kind = RequestOutputKind.FINAL_ONLY if watch is None else RequestOutputKind.DELTA
        request_id = f"pathprune-{next(self._ids)}"
        self.engine.add_request(request_id, TokensPrompt(prompt_token_ids=list(prompt_ids)), params)
        self.in_flight.add(request_id)
        if watch is not None:
            self._streams[request_id] = _Stream(list(prompt_ids), watch)
        return request_id

    def step(self) -> None:
        """One engine step: every request in flight decodes a token (or prefills)."""
        start, running = time.perf_counter(), set(self.in_flight)
        paused = []
        for out in self.engine.step():
            rid = out.request_id
            if rid not in self.in_flight:
                continue
            stream = self._streams.get(rid)
            keep = stream.add(out) if stream is not None else None
            if keep is not None and not (out.finished and keep == len(stream.tokens)):  # (a last token: it ended)
                if not out.finished:
                    paused.append(rid)
                self._finish(rid, stream.output(keep))
            elif out.finished:
                self._finish(rid, out if stream is None else stream.output())
        if paused:  # the pause point came: the rest of the request is not needed (its full KV blocks stay cached)
            self.engine.abort_request(paused)
        if self.on_step is not None:
            self.on_step(time.perf_counter() - start, running)

    def _finish(self, request_id: str, output) -> None:
        self.in_flight.discard(request_id)
        self._streams.pop(request_id, None)
        self._finished[request_id] = output

    def done(self, request_ids: Iterable[str]) -> bool:
        return all(r in self._finished for r in request_ids)

    def collect(self, request_ids: list[str]) -> list:
        """The finished outputs of ``request_ids``, in that order (each handed out once)."""
        return [self._finished.pop(r) for r in request_ids]

    def wait(self, request_ids: list[str]) -> list:
        """Step until ``request_ids`` have finished (other requests keep decoding meanwhile); their outputs."""
        while not self.done(request_ids):
            self.step()
        return self.collect(request_ids)

    def abort(self, request_ids: list[str]) -> None:
        """Drop requests (in flight or finished and not collected)."""
        live = [r for r in request_ids if r in self.in_flight]
        if live:
            self.engine.abort_request(live)
            self.in_flight.difference_update(live)
        for r in request_ids:
            self._finished.pop(r, None)
            self._streams.pop(r, None)

    def run(self, prompts: list[list[int]], params: list) -> list:
        """Submit ``prompts`` with ``params`` (one each) and wait for them: ``LLM.generate`` for a loop that
        may have other requests in flight."""
        return self.wait([self.submit(p, sp) for p, sp in zip(prompts, params)])
