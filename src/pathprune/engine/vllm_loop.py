"""One vLLM engine's step loop, shared by every path request and check in flight.

``LLM.generate`` runs the engine until *every* request in it has finished, so it can serve only one batch at a
time: a check that calls it while other requests decode would run them to the end (and take their outputs).
pathprune therefore drives the engine itself through vLLM's public ``LLMEngine`` API (``add_request``,
``step``, ``abort_request``): requests are submitted under pathprune's own ids, each ``step`` decodes every
request in flight, and finished outputs wait here until their owner collects them. A per-request check, or
STOP's one-token reads during it, then waits only for its own requests while the others keep decoding.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable


class EngineLoop:
    """Submit requests to a vLLM ``LLM``'s engine, step it, and hand each finished output to its owner."""

    def __init__(self, llm) -> None:
        self.engine = llm.llm_engine
        self._ids = itertools.count()
        self._finished: dict[str, object] = {}
        self.in_flight: set[str] = set()
        self.on_step = None
        """``on_step(seconds, in_flight_ids)`` after every engine step (time accounting of the caller)."""

    def submit(self, prompt_ids: list[int], params) -> str:
        """Add one request (final output only); its id."""
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params.output_kind = RequestOutputKind.FINAL_ONLY
        request_id = f"pathprune-{next(self._ids)}"
        self.engine.add_request(request_id, TokensPrompt(prompt_token_ids=list(prompt_ids)), params)
        self.in_flight.add(request_id)
        return request_id

    def step(self) -> None:
        """One engine step: every request in flight decodes a token (or prefills)."""
        start, running = time.perf_counter(), set(self.in_flight)
        for out in self.engine.step():
            if out.finished and out.request_id in self.in_flight:
                self.in_flight.discard(out.request_id)
                self._finished[out.request_id] = out
        if self.on_step is not None:
            self.on_step(time.perf_counter() - start, running)

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

    def run(self, prompts: list[list[int]], params: list) -> list:
        """Submit ``prompts`` with ``params`` (one each) and wait for them: ``LLM.generate`` for a loop that
        may have other requests in flight."""
        return self.wait([self.submit(p, sp) for p, sp in zip(prompts, params)])
