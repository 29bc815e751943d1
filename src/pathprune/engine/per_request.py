"""Launch–Check–Resume with a check per request: no global barrier (backends that stream, e.g. vLLM).

:func:`~pathprune.engine.loop.launch_check_resume` pauses every path of a batch at each checkpoint: a request
whose paths reached L waits for all the others, and after the check the survivors decode as a smaller batch for
as many steps. Here each request moves through the schedule on its own. Its paths are submitted up to the next
checkpoint; when its own paths have all arrived (or ended) it is checked (``on_check`` sees a batch holding that
request's paths alone) and its kept paths are resubmitted, while the engine keeps decoding every other request.
At most ``max_active`` requests are in flight; a finished request's slots go to the next one at once, so the
KV blocks and batch rows that pruning frees are used, not left idle.

Paths draw from per-path random streams and every signal scores paths independently of which others share its
batch, so every path, score and kept set equals the barrier loop's (tested on the vLLM backend). One number
is attributed differently: an external scorer's re-encoding cost (oracle continuations, PRM and judge inputs)
is split over the rows of the request it was spent on, not over the whole batch's, so each request's
``usage.reencoded`` is its own; the sum over requests is unchanged (tested).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from .loop import Trace
from .sampling import SamplingParams
from .steps import Pause


def per_request_check_resume(backend, prompts: list[list[int]], keys: list[int], params: SamplingParams, seed: int,
                             checkpoints: Sequence[Pause | int] = (), on_check: Callable | None = None,
                             top_logprobs: int | None = 5, finish_logprobs: bool = True,
                             max_active: int | None = None, on_done: Callable[[int], None] | None = None) -> Trace:
    """:func:`~pathprune.engine.loop.launch_check_resume`'s contract, each request checked on its own.

    ``backend`` streams: ``launch``, ``submit(batch, length, params, top_logprobs) -> (rows, ids)``,
    ``collect(batch, rows, outputs, top_logprobs, phase)`` and an engine ``loop`` (:class:`EngineLoop`).
    ``on_done(i)`` is called when request ``i`` has finished every path.
    """
    whole = backend.launch(prompts, params.n, seed, keys)
    trace = Trace(list(whole.records))
    n, stages, loop = params.n, len(checkpoints), backend.loop
    units = [whole.part(range(i * n, (i + 1) * n)) for i in range(len(prompts))]
    stage = [0] * len(prompts)
    flight: dict[int, tuple[list[int], list[str], int | None, str]] = {}
    phase_of: dict[str, int] = {}
    trace.decode_seconds, trace.check_seconds = [0.0] * (stages + 1), [0.0] * stages

    def on_step(seconds: float, running: set[str]) -> None:  # an engine step's time, shared by the phases in it
        mine = [phase_of[r] for r in running if r in phase_of]
        for s in mine:
            trace.decode_seconds[s] += seconds / len(mine)

    def advance(i: int) -> bool:
        """Submit request ``i``'s next phase, checking it whenever it has nothing left to decode; False once
        every path of it has ended."""
        while stage[i] <= stages:
            s = stage[i]
            pause = Pause.of(checkpoints[s]) if s < stages else Pause(params.max_new_tokens)
            logprobs = top_logprobs if s < stages or finish_logprobs else None
            rows, ids = backend.submit(units[i], pause, params, logprobs)
            if ids:
                flight[i] = (rows, ids, logprobs, "launch" if s < stages else "resume")
                phase_of.update((r, s) for r in ids)
                return True
            check(i)
        return False

    def check(i: int) -> None:
        s = stage[i]
        if s < stages:
            for rec in units[i].records:
                rec.checked_at.append(len(rec.tokens))
        if s < stages and len(units[i]) and on_check is not None:
            t = time.perf_counter()
            on_check(units[i], s)
            trace.check_seconds[s] += time.perf_counter() - t
        stage[i] += 1

    def finish(i: int) -> None:
        trace.prefix_cache.update(units[i].hits)
        backend.free(units[i])
        if on_done is not None:
            on_done(i)

    pending, active = deque(range(len(prompts))), set()
    limit = max_active or len(prompts)
    previous, loop.on_step = loop.on_step, on_step
    try:
        while pending or active:
            while pending and len(active) < limit:
                i = pending.popleft()
                if advance(i):
                    active.add(i)
                else:
                    finish(i)
            if not active:
                continue
            loop.step()
            for i in sorted(active):
                rows, ids, logprobs, phase = flight[i]
                if not loop.done(ids):
                    continue
                del flight[i]
                for r in ids:
                    del phase_of[r]
                backend.collect(units[i], rows, loop.collect(ids), logprobs, phase)
                check(i)
                if not advance(i):
                    active.discard(i)
                    finish(i)
    except BaseException:
        loop.abort([r for _, ids, _, _ in flight.values() for r in ids])  # nothing of this run stays in the engine
        raise
    finally:
        loop.on_step = previous
    return trace
