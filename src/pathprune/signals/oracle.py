"""The Monte-Carlo oracle: each paused prefix's label, computed on the fly (analysis only).

``oracle[:K][:max_new_tokens=N][:temperature=T][:top_p=P]`` samples K continuations of every
paused path from its prefix, with the generator itself, grades them against the problem's
answer and scores the path by the share that is correct: exactly the soft label STOP is
trained on (:mod:`pathprune.stop.labels`). It is an **upper bound for analysis, not a
deployable signal**: it reads the reference answer and spends K full continuations per
path, far more than finishing the path would cost.

The continuations run in a separate batch (each prompt + prefix prefilled once, shared by
its K continuations) with their own random streams keyed by (run seed, stage, problem,
path, prefix length), so the live batch's cache and its paths' random streams are never
touched. Every token of that side computation is charged with :meth:`CheckView.charge`:
the re-encoded prompt + prefix of each path plus every generated continuation token
(``calls`` = K rollouts per path). Paths keep the budget of the run: a continuation may
generate up to ``max_new_tokens`` minus the prefix (default: the model's generation
config; pass the run's value when it differs).
"""

from __future__ import annotations

import zlib

import torch

from ..engine.contract import CheckView, Signal
from ..engine.loop import sample
from ..engine.registry import register_signal
from ..engine.sampling import SamplingParams
from ..errors import PathpruneError
from ..tasks.answers import extract_answer
from ..tasks.grading import answers_equal


@register_signal("oracle")
class OracleSignal(Signal):
    """Monte-Carlo label of each prefix from K fresh continuations (upper bound, analysis only; `oracle[:K]`)."""

    name, source, learnable = "oracle", "none", False
    needs = frozenset({"label"})

    def __init__(self, arg: str | None = None, *, k: int = 8, max_new_tokens: int | None = None,
                 temperature: float = 1.0, top_p: float = 1.0, chunk: int = 8) -> None:
        from .judges.signals import parse_options

        text = arg or ""
        if "=" in text.split(":")[0]:  # options without K
            text = ":" + text
        head, given = parse_options("oracle", text, {"max_new_tokens", "temperature", "top_p"})
        if head:
            try:
                k = int(head)
            except ValueError:
                raise PathpruneError(f"oracle:K needs an integer K, got {head!r}") from None
        conv = {"max_new_tokens": int, "temperature": float, "top_p": float}
        opts = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        for key, value in given.items():
            try:
                opts[key] = conv[key](value)
            except ValueError:
                raise PathpruneError(f"oracle: {key} needs a number, got {value!r}") from None
        if k < 1:
            raise PathpruneError(f"oracle needs K >= 1 continuations, got {k}")
        self.k, self.chunk = k, chunk
        self.max_new_tokens, self.temperature, self.top_p = opts["max_new_tokens"], opts["temperature"], opts["top_p"]
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise PathpruneError(f"oracle: max_new_tokens must be >= 1, got {self.max_new_tokens}")
        SamplingParams(n=k, temperature=self.temperature, top_p=self.top_p)  # validates them

    def budget(self, model) -> int:
        budget = self.max_new_tokens or getattr(getattr(model, "generation_config", None), "max_new_tokens", None)
        if not budget:
            raise PathpruneError("oracle needs the run's token budget: --signal oracle:K:max_new_tokens=N")
        return budget

    def continuation_key(self, problem_id: str, path_index: int, prefix_len: int) -> int:
        return zlib.crc32(f"oracle:{problem_id}:{path_index}:{prefix_len}".encode())

    def score(self, view: CheckView) -> torch.Tensor:
        # the continuations run where the paths do: the transformers model, or the vLLM backend
        model = view.batch.model if view.in_process else view.batch.backend
        tok = view.tokenizer
        budget = self.budget(model)
        missing = [r.id for r in view.requests if r.reference is None]
        if missing:
            raise PathpruneError(f"oracle grades continuations and needs each request's reference answer "
                                 f"(none for {missing[0]!r}); run it through evaluation, which attaches them")
        prompts = {i: list(r.prompt_ids) for i, r in enumerate(view.requests)}

        def correct(request, tokens: list[int]) -> bool:
            answer = extract_answer(tok.decode(tokens, skip_special_tokens=True), request.answer_kind)
            return answers_equal(request.reference, answer, request.answer_kind)
        scores = torch.zeros(len(view.records))
        tokens = calls = 0
        seed = zlib.crc32(f"oracle:{view.seed}:{view.stage}".encode())
        rows = list(enumerate(view.records))
        # group by prefix length: one continuation budget per sample() call
        by_len: dict[int, list[tuple[int, object]]] = {}
        for row, rec in rows:
            by_len.setdefault(len(rec.tokens), []).append((row, rec))
        for length, group in sorted(by_len.items()):
            remaining = budget - length
            if remaining < 1:  # nothing left to generate: the prefix is the whole path
                for row, rec in group:
                    scores[row] = float(correct(view.requests[rec.problem_index], list(rec.tokens)))
                continue
            params = SamplingParams(n=self.k, temperature=self.temperature, top_p=self.top_p,
                                    max_new_tokens=remaining, seed=seed)
            for start in range(0, len(group), self.chunk):
                part = group[start:start + self.chunk]
                contexts = [prompts[rec.problem_index] + list(rec.tokens) for _, rec in part]
                keys = [self.continuation_key(view.requests[rec.problem_index].id, rec.path_index, length)
                        for _, rec in part]
                conts = sample(model, tok, contexts, params, problem_keys=keys)
                for (row, rec), ctx, outs in zip(part, contexts, conts):
                    request = view.requests[rec.problem_index]
                    right = [correct(request, list(rec.tokens) + c) for c in outs]
                    scores[row] = sum(right) / len(right)
                    tokens += len(ctx) + sum(map(len, outs))
                    calls += len(outs)
        view.charge(tokens=tokens)
        return scores
