"""The one owner of the model: encodes prompts, runs merged launch batches and STOP classification.

Everything here runs on the scheduler's worker thread, never concurrently:
the STOP module switches its adapter on the shared model during a check, and
fast tokenizers are not safe to reconfigure from several threads.

Requests whose :class:`GenerateSpec` are equal run as one :meth:`Pruner.run` batch.
That is exact, not an approximation: every path's randomness depends only on
(seed, problem key, path index, step), and the server folds each request's seed
into its problem key, so a request gets the same paths alone or merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..engine.contract import CheckView, Signal
from ..engine.pruner import Pruner, RequestOutput
from ..engine.registry import check_signal_name, get_signal
from ..engine.request import Prompt, Request, encode_prompt, prompt_id, question_of
from ..engine.sampling import SamplingParams
from ..errors import PathpruneError
from .config import ServerConfig


@dataclass(frozen=True)
class GenerateSpec:
    """What two requests must share to run in one launch batch."""

    sampling: SamplingParams
    schedule: str
    signal: str


@dataclass(frozen=True)
class GenerateWork:
    spec: GenerateSpec
    prompts: tuple[Prompt, ...]
    seed: int
    answer_kind: str


@dataclass(frozen=True)
class ClassifyWork:
    prefixes: tuple[list[int], ...]
    """Checked prefixes, their [STOP] tails stripped (see :meth:`ModelRunner.prepare_classify`)."""


def _request_id(seed: int, ids: list[int]) -> str:
    """Seeds the request's random streams: same seed and prompt, same paths, whatever the batch."""
    return f"{seed}:{prompt_id(ids)}"


class ModelRunner:
    """Loads the model (and STOP, when available) and executes batches of work."""

    def __init__(self, config: ServerConfig):
        from ..models import load_model
        from ..signals.stop_signal import StopSignal

        self.config = config
        self.answer_kind = "testbed" if config.model == "testbed" else "math"
        stop = stop_checkpoint_for(config)
        self._signals: dict[str, Signal] = {}
        self.stop_module = None  # the transformers STOP module, or the checkpoint's config on vLLM
        self.stop_token_id: int | None = None
        signal = StopSignal(str(stop)) if stop else None
        if config.backend == "vllm":  # one engine; STOP, when served, is its model plugin
            self.model = None
            self.pruner = Pruner(config.model, signal or "mean_logprob", answer_kind=self.answer_kind, backend="vllm")
            self.tokenizer = self.pruner.tokenizer
            self.context, self.vocab_size = self.pruner.backend.context, self.pruner.backend.vocab
        else:
            self.model, self.tokenizer = load_model(config.model)
            self.context = getattr(self.model.config, "max_position_embeddings", None)
            self.vocab_size = self.model.get_input_embeddings().num_embeddings
            self.pruner = Pruner((self.model, self.tokenizer), answer_kind=self.answer_kind)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        if signal is not None:
            # attach once, now: a bad checkpoint fails at start
            backend = self.pruner.backend
            self.stop_module = signal.module_for(backend.model) if backend.in_process else signal.vllm_stop()
            self._signals["stop"] = signal
            if "[STOP]" in self.tokenizer.get_vocab():
                self.stop_token_id = self.tokenizer.convert_tokens_to_ids("[STOP]")
        self.default_signal = config.default_signal or ("stop" if self.stop_module else "mean_logprob")
        self.allowed_signals = {s for s in (*config.allow_signals, self.default_signal) if ":" in s}

    @property
    def n_stop(self) -> int | None:
        return self.stop_module.config.n_stop if self.stop_module else None

    # -- validation that needs no model (safe on the event-loop thread) ------------------------
    def check_signal(self, spec: str) -> None:
        """Raise a one-line error for a signal this server cannot or will not run.

        Clients name signals; arguments are the operator's: some name files (``prm:DIR``,
        ``judge:DIR``, ``stop:DIR``) that a client must not make the server open. A spec with an
        argument runs only when it is the server's default or listed in ``allow_signals``.
        """
        name, _, arg = spec.partition(":")
        check_signal_name(spec)
        if arg and spec not in self.allowed_signals:
            raise PathpruneError(f"signal arguments are set by the server: {spec!r} is not enabled "
                                 f"(enabled: {', '.join(sorted(self.allowed_signals)) or 'none'})",
                                 parameter="signal", value=spec)
        if name == "stop":
            if self.stop_module is None:
                raise PathpruneError("this server has no STOP checkpoint (start it with --stop DIR)",
                                     parameter="signal", value=spec)
            return
        signal = get_signal(spec)
        if "label" in signal.needs:
            raise PathpruneError(f"signal {name!r} needs reference answers, which a server does not have",
                                 parameter="signal", value=spec)

    def check_ids(self, ids: list[int], what: str) -> None:
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise PathpruneError(f"{what}: token id {bad[0]} is outside the vocabulary [0, {self.vocab_size})")

    # -- worker-thread work -------------------------------------------------------------------
    def _signal(self, spec: str) -> Signal:
        if spec not in self._signals:  # one instance per spec: learned signals load their weights once
            self._signals[spec] = get_signal(spec)
        return self._signals[spec]

    def encode(self, work: GenerateWork) -> list[list[int]]:
        """Token ids of every prompt of ``work``, checked against the vocabulary and the context."""
        out = []
        for i, prompt in enumerate(work.prompts):
            what = "prompt" if len(work.prompts) == 1 else f"prompt {i}"
            if isinstance(prompt, list):
                ids = list(prompt)
                self.check_ids(ids, what)
            else:
                try:
                    ids = encode_prompt(self.tokenizer, prompt)
                except Exception as err:  # e.g. a chat template that rejects a role: the request's fault
                    raise PathpruneError(f"cannot encode {what}: {type(err).__name__}: "
                                         f"{str(err).splitlines()[0][:200] if str(err) else ''}") from None
            if not ids:
                raise PathpruneError(f"{what} is empty")
            budget = work.spec.sampling.max_new_tokens
            if self.context and len(ids) + budget > self.context:
                raise PathpruneError(f"{what} ({len(ids)} tokens) + max_tokens ({budget}) exceeds the model's "
                                     f"context of {self.context} tokens")
            out.append(ids)
        return out

    @torch.no_grad()
    def generate(self, spec: GenerateSpec, works: list[GenerateWork], encoded: list[list[list[int]]],
                 cancelled: Callable[[int], bool]) -> list[list[RequestOutput]]:
        """Run every prompt of ``works`` (same spec) as one launch batch; results per work.

        ``cancelled(w)`` says whether work ``w``'s client has gone; its paths are dropped at the next checkpoint.
        """
        requests, owner = [], []
        for w, (work, prompts) in enumerate(zip(works, encoded)):
            for prompt, ids in zip(work.prompts, prompts):
                requests.append(Request(_request_id(work.seed, ids), tuple(ids), question_of(self.tokenizer, prompt),
                                        work.answer_kind))
                owner.append(w)
        results = self.pruner.run(requests, spec.sampling, signal=self._signal(spec.signal), schedule=spec.schedule,
                                  abort=lambda i: cancelled(owner[i]), problems_per_batch=len(requests))
        per_work: list[list[RequestOutput]] = [[] for _ in works]
        for w, result in zip(owner, results):
            per_work[w].append(result)
        return per_work

    def prepare_classify(self, inputs: list[list[int]], tail: int | None, truncate: int | None) -> ClassifyWork:
        """Check /classify inputs and strip their [STOP] tails (pure Python: safe on any thread)."""
        if self.stop_module is None:
            raise PathpruneError("this server has no STOP checkpoint (start it with --stop DIR)")
        if self.stop_module.feature_head is not None:  # the official request has no prompt / prefix boundary
            raise PathpruneError("this server's STOP checkpoint reads the prefix's log-probabilities "
                                 f"({', '.join(self.stop_module.config.head_features)}), which /classify token ids "
                                 "cannot give; serve a checkpoint without head_features for /classify")
        n = self.n_stop
        if tail is not None and tail != n:
            raise PathpruneError(f"assess_tail_len is {tail} but the STOP checkpoint uses {n} [STOP] tokens")
        prefixes = []
        for i, ids in enumerate(inputs):
            ids = list(ids[-truncate:]) if truncate else list(ids)  # vLLM keeps the last N tokens
            self.check_ids(ids, f"input {i}")
            if len(ids) <= n:
                raise PathpruneError(f"input {i} has {len(ids)} tokens; it needs a prefix and {n} [STOP] tokens")
            if self.stop_token_id is not None and any(t != self.stop_token_id for t in ids[-n:]):
                raise PathpruneError(f"input {i} must end in {n} [STOP] tokens (id {self.stop_token_id})")
            if self.context and len(ids) > self.context:
                raise PathpruneError(f"input {i} ({len(ids)} tokens) exceeds the model's context of {self.context}")
            prefixes.append(ids[:-n])
        return ClassifyWork(tuple(prefixes))

    def classify(self, prefixes: list[list[int]]) -> list[float]:
        """p(success) of each prefix under STOP (the base-model cache, then the [STOP] pass)."""
        if not self.pruner.backend.in_process:  # the engine's plugin scores prefixes read from its prefix cache
            batch = self.pruner.backend.prefix_batch(prefixes)
            return self._signals["stop"].score(CheckView(batch, [], self.tokenizer, stage=0)).tolist()
        return self.stop_module.score_ids(prefixes, self.pad_id).tolist()


def stop_checkpoint_for(config: ServerConfig) -> Path | None:
    """The STOP checkpoint a server with ``config`` loads, if any."""
    from ..signals.stop_signal import TESTBED_STOP

    return Path(config.stop) if config.stop else (TESTBED_STOP if config.model == "testbed" else None)
