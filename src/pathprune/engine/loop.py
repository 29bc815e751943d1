"""The one Launch–Check–Resume loop.

Launch N paths per request, pause every live path at each checkpoint and hand
the paused batch to ``on_check`` (which scores it and may drop rows), then
resume the survivors to their end. The :class:`~pathprune.engine.Pruner`,
the evaluation harness (every signal on the same paused batch, nothing
dropped) and :func:`sample` (no checkpoints) all run this loop.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..errors import PathpruneError
from .backend import Backend, as_backend
from .batch import LiveBatch, PathRecord
from .sampling import SamplingParams
from .steps import Pause


@dataclass
class Trace:
    """Every path one run launched, and where its wall time went."""

    records: list[PathRecord]
    decode_seconds: list[float] = field(default_factory=list)
    """Decoding before each checkpoint, then after the last one (len = checkpoints + 1)."""
    check_seconds: list[float] = field(default_factory=list)
    """Time spent in ``on_check`` at each checkpoint (0 where no path was live)."""
    prefix_cache: dict = field(default_factory=dict)
    """(prompt index, phase) → prefix-cache hits, from backends that report them (vLLM)."""


def request_key(request_id: str) -> int:
    """The random-stream key of a request: a request gets the same paths in any batch."""
    return zlib.crc32(request_id.encode())


def resolve_seed(seed: int | None) -> int:
    return seed if seed is not None else int(torch.randint(0, 2**62, ()).item())


def check_context(backend: Backend, prompts: list[list[int]], max_new_tokens: int, names: Sequence[str]) -> None:
    """A one-line error for an empty prompt or one that leaves no room for ``max_new_tokens``."""
    for ids, name in zip(prompts, names):
        if not ids:
            raise PathpruneError(f"{name} is empty: every prompt needs at least one token")
        if backend.context and len(ids) + max_new_tokens > backend.context:
            raise PathpruneError(f"{name}: prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) "
                                 f"exceeds the model's context of {backend.context}")


@torch.no_grad()
def launch_check_resume(backend: Backend, prompts: list[list[int]], keys: list[int], params: SamplingParams,
                        seed: int, checkpoints: Sequence[Pause | int] = (),
                        on_check: Callable[[LiveBatch, int], None] | None = None,
                        top_logprobs: int | None = 5, finish_logprobs: bool = True) -> Trace:
    """Run the loop over one batch of prompts; ``on_check(batch, stage)`` sees each paused batch.

    ``checkpoints``: one :class:`~pathprune.engine.steps.Pause` per stage (an int L: pause after L tokens).

    ``top_logprobs``: what the paths record per token up to the last checkpoint (None: no log-probabilities,
    0: the sampled token's, k: also the top k); ``finish_logprobs=False``: nothing after the last checkpoint
    (no check reads it; the vLLM backend then computes none).
    """
    t0 = time.perf_counter()
    batch = backend.launch(prompts, params.n, seed, keys)
    trace = Trace(list(batch.records))
    for stage, pause in enumerate(checkpoints):
        backend.extend(batch, Pause.of(pause), params, top_logprobs)
        for rec in batch.records:
            rec.checked_at.append(len(rec.tokens))
        t1 = time.perf_counter()
        trace.decode_seconds.append(t1 - t0)
        if len(batch) and on_check is not None:
            on_check(batch, stage)
        t0 = time.perf_counter()
        trace.check_seconds.append(t0 - t1)
    backend.resume(batch, params, top_logprobs if finish_logprobs else None)
    trace.prefix_cache = dict(getattr(batch, "hits", {}))
    backend.free(batch)
    trace.decode_seconds.append(time.perf_counter() - t0)
    return trace


def sample(model, tokenizer, prompts: list[list[int]], params: SamplingParams,
           problem_keys: list[int] | None = None) -> list[list[list[int]]]:
    """Sample ``params.n`` completions for every prompt; returns ``out[prompt][path] = token ids``.

    ``model`` is a transformers model (with its ``tokenizer``) or a :class:`Backend` (e.g. the vLLM one).
    ``problem_keys`` (e.g. CRC32 of problem ids) seed each prompt's paths; by
    default the prompt's position in this call does. Each prompt is prefilled
    once and its cache shared by its n paths; rows that emit EOS (kept as their
    last token) leave the batch at once. This is Launch without checkpoints.
    """
    backend = as_backend(model, tokenizer)
    if not prompts:
        raise PathpruneError("every prompt must have at least one token")
    check_context(backend, prompts, params.max_new_tokens, [f"prompt {i}" for i in range(len(prompts))])
    keys = problem_keys if problem_keys is not None else list(range(len(prompts)))
    trace = launch_check_resume(backend, prompts, keys, params, resolve_seed(params.seed), top_logprobs=None)
    n = params.n
    return [[r.tokens for r in trace.records[i * n:(i + 1) * n]] for i in range(len(prompts))]
