"""The generation backend seam: launch, extend, probe, select, resume, free.

The engine's loop (:mod:`pathprune.engine.loop`) talks to generation only
through a :class:`Backend`; signals read the live batch it returns through
:class:`~pathprune.engine.contract.CheckView`. :class:`TransformersBackend`
is the first backend: a hand-written decode loop over a transformers model
with one shared, live KV cache (:class:`~pathprune.engine.batch.LiveBatch`).
"""

from __future__ import annotations

from typing import Protocol

import torch

from .batch import LiveBatch
from .request import Prompt, encode_prompt
from .sampling import SamplingParams
from .steps import Pause


class Backend(Protocol):
    """What the engine needs from a generation backend."""

    name: str
    """``transformers``, ``vllm``, …: for messages and records, never to branch on (use the capabilities)."""
    in_process: bool
    """True: the model runs in this process over a live cache: ``model`` is that model and a paused batch can
    ``probe`` it (run appended tokens over the cache). False: the model runs inside an engine (``model`` is
    None); a paused batch ``read``s the log-probabilities of chosen tokens after appended ones, and what a signal
    computes over the model's states lives in the engine's model plugin (STOP's on vLLM)."""
    model: object | None
    tokenizer: object
    context: int | None
    """Prompt + generated tokens the model accepts (None: unbounded)."""
    per_request_checks: bool
    """True: the backend also streams (``submit``, ``collect``, an engine ``loop``), so each request can be
    checked when its own paths reach a checkpoint (:mod:`pathprune.engine.per_request`)."""

    def encode(self, prompt: Prompt) -> list[int]: ...

    def launch(self, prompts: list[list[int]], n: int, seed: int, keys: list[int]) -> LiveBatch: ...

    def extend(self, batch: LiveBatch, pause: Pause, params: SamplingParams, top_logprobs: int | None) -> None:
        """Decode every live path to its pause (``pause.length`` tokens, or earlier where ``pause.early``
        holds) and leave it there (a checkpoint). ``top_logprobs``: the log-probabilities to record per token
        (None: none needed, 0: the sampled token's, k: also the top k)."""

    def resume(self, batch: LiveBatch, params: SamplingParams, top_logprobs: int | None) -> None:
        """Decode every live path to its end (EOS or ``max_new_tokens``)."""

    def select(self, batch: LiveBatch, rows: list[int]) -> None: ...

    def free(self, batch: LiveBatch) -> None: ...


def as_backend(model, tokenizer) -> Backend:
    """A generation backend for what callers hand the engine: a transformers model (with its tokenizer) or a
    backend already (e.g. the vLLM one), returned as is."""
    return TransformersBackend(model, tokenizer) if isinstance(model, torch.nn.Module) else model


def eos_ids(model, tokenizer) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids]) if ids is not None else set()
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def suppressed_ids(model, tokenizer) -> list[int]:
    """Tokens a sampler must never emit: ``[STOP]``, padding (when distinct from EOS) and the model's own list."""
    ids = set(model.generation_config.suppress_tokens or [])
    stop = tokenizer.convert_tokens_to_ids("[STOP]") if "[STOP]" in tokenizer.get_vocab() else None
    if stop is not None:
        ids.add(stop)
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id not in eos_ids(model, tokenizer):
        ids.add(tokenizer.pad_token_id)
    return sorted(ids)


class TransformersBackend:
    """Generation with a transformers causal LM and its tokenizer (the default backend)."""

    name = "transformers"
    in_process = True
    per_request_checks = False
    """One live batch, one cache: every request of a batch pauses at each checkpoint together."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.eos = torch.tensor(sorted(eos_ids(model, tokenizer)), dtype=torch.long)
        self.banned = torch.tensor(suppressed_ids(model, tokenizer), dtype=torch.long)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.context: int | None = getattr(model.config, "max_position_embeddings", None)

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def launch(self, prompts: list[list[int]], n: int, seed: int, keys: list[int]) -> LiveBatch:
        return LiveBatch.launch(self.model, prompts, n, self.pad_id, seed, problem_keys=keys)

    def _decode(self, batch: LiveBatch, pause: Pause, params: SamplingParams, top_logprobs: int | None,
                feed_last: bool) -> None:
        # the model's log-probabilities come with its logits here: the sampled token's are always kept
        batch.decode_until(pause.length, params, self.eos, self.banned, top_logprobs=top_logprobs or 0,
                           feed_last=feed_last, early=pause.early)

    def extend(self, batch: LiveBatch, pause: Pause, params: SamplingParams, top_logprobs: int | None) -> None:
        self._decode(batch, Pause.of(pause), params, top_logprobs, feed_last=True)

    def resume(self, batch: LiveBatch, params: SamplingParams, top_logprobs: int | None) -> None:
        self._decode(batch, Pause(params.max_new_tokens), params, top_logprobs, feed_last=False)

    def select(self, batch: LiveBatch, rows: list[int]) -> None:
        batch.select(rows)

    def free(self, batch: LiveBatch) -> None:
        batch.free()
