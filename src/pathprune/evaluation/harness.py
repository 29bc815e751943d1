"""Fair signal comparison: one launch, every signal scores the same prefixes, every path finished once.

The engine's random streams are counter-based per path (``engine.sampling``),
so a path's tokens never depend on which other paths are still in the batch.
The harness therefore launches N paths per problem, pauses them at every
checkpoint L, lets *each* signal score the same paused batch (probes leave the
cache bit-identical), and then finishes all N paths once, without pruning.
Which k paths a signal would keep at L, and what that run would have cost, is
then computed exactly from the logs (:mod:`pathprune.evaluation.offline`): it
equals a :class:`~pathprune.engine.Pruner` run with schedule ``L:k`` (a test
checks this path for path), at the cost of one unpruned run plus the checks,
for any number of signals, checkpoints and k.

Records (one per path, grouped by problem) hold the path's length, answer and
correctness, and per signal and checkpoint its score and the check and
re-encoding tokens charged to it. Single-checkpoint schedules only: a cascade
re-ranks survivors with set-dependent signals (e.g. Jaccard diversity), which
one shared pass cannot reproduce exactly; use ``pathprune run`` for cascades.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from ..engine.backend import as_backend
from ..engine.batch import LiveBatch
from ..engine.contract import CheckView, Signal
from ..engine.loop import check_context, launch_check_resume, request_key, resolve_seed
from ..engine.pruner import reencoded_per_row, score_view
from ..engine.registry import get_signal
from ..engine.sampling import SamplingParams
from ..errors import PathpruneError
from ..tasks.answers import extract_answer
from ..tasks.grading import answers_equal
from ..tasks.problem import Problem
from .problems import requests_for


@dataclass
class ProblemLog:
    """One problem's shared run: ``unit`` row plus one row per path (JSON-ready)."""

    unit: dict
    paths: list[dict] = field(default_factory=list)


class SharedLaunch:
    """Launch N paths per problem, score them with every signal at every checkpoint, finish all.

    Args:
        model, tokenizer: from :func:`pathprune.load_model`, or a generation backend (e.g. the vLLM one) and its
            tokenizer.
        signals: registry specs (``"stop"``, ``"conf_lowest:8"``) or :class:`Signal` objects.
        checkpoints: prefix lengths L at which every signal scores the live paths.
        sampling: ``sampling.n`` is N; ``max_new_tokens`` bounds every path.
    """

    top_logprobs = 5  # the Pruner's default: confidence signals read the same top-k

    def __init__(self, model, tokenizer, signals: Sequence[Signal | str], checkpoints: Sequence[int],
                 sampling: SamplingParams, *, problems_per_batch: int = 4):
        if not signals:
            raise PathpruneError("give at least one signal")
        self.signals = [get_signal(s) for s in signals]
        for signal in self.signals:
            signal.validate()
        self.names = [s if isinstance(s, str) else s.name for s in signals]
        if len(set(self.names)) != len(self.names):
            raise PathpruneError(f"signals given twice: {', '.join(self.names)}")
        self.checkpoints = sorted(set(int(c) for c in checkpoints))
        if not self.checkpoints or self.checkpoints[0] < 1 or self.checkpoints[-1] >= sampling.max_new_tokens:
            raise PathpruneError(f"checkpoints must lie in 1..{sampling.max_new_tokens - 1} "
                                 f"(max_new_tokens {sampling.max_new_tokens}), got {list(checkpoints)}")
        if problems_per_batch < 1:
            raise PathpruneError(f"problems_per_batch must be >= 1, got {problems_per_batch}")
        self.backend = as_backend(model, tokenizer)
        self.tokenizer, self.sampling = tokenizer, sampling
        self.problems_per_batch = problems_per_batch

    def run(self, problems: list[Problem], progress: Callable[[int], None] | None = None) -> Iterator[ProblemLog]:
        """Yield each problem's log as soon as its batch is done (input order)."""
        for start in range(0, len(problems), self.problems_per_batch):
            chunk = problems[start:start + self.problems_per_batch]
            yield from self._run_batch(chunk)
            if progress:
                progress(len(chunk))

    @torch.no_grad()
    def _run_batch(self, problems: list[Problem]) -> list[ProblemLog]:
        tok, params = self.tokenizer, self.sampling
        requests = requests_for(tok, problems)
        prompts = [list(r.prompt_ids) for r in requests]
        check_context(self.backend, prompts, params.max_new_tokens, [f"problem {p.id!r}" for p in problems])
        seed = resolve_seed(params.seed)
        # per (problem index, path index): {signal: {L: (score, check tokens, re-encoded tokens)}}
        scored: dict[tuple[int, int], dict[str, dict[str, list]]] = {}
        check_seconds: dict[str, dict[str, float]] = {name: {} for name in self.names}

        def on_check(batch: LiveBatch, stage: int) -> None:
            length = self.checkpoints[stage]
            for name, signal in zip(self.names, self.signals):
                # stage 0 for every checkpoint: each (L, k) is scored as the single-stage run L:k
                view = CheckView(batch, requests, tok, stage=0, seed=seed)
                before, ts = batch.check_tokens, time.perf_counter()
                scores = score_view(signal, view).tolist()
                check_seconds[name][str(length)] = time.perf_counter() - ts
                per_row = (batch.check_tokens - before) // len(batch)
                for rec, score, reenc in zip(batch.records, scores, reencoded_per_row(view)):
                    slot = scored.setdefault((rec.problem_index, rec.path_index), {})
                    slot.setdefault(name, {})[str(length)] = [score, per_row, reenc]

        trace = launch_check_resume(self.backend, prompts, [request_key(r.id) for r in requests], params, seed,
                                    self.checkpoints, on_check, self.top_logprobs)
        decoded = [sum(trace.decode_seconds[:i + 1]) for i in range(len(self.checkpoints))]
        launch_seconds = {str(length): t for length, t in zip(self.checkpoints, decoded)}
        total = sum(trace.decode_seconds)

        share = 1 / len(problems)
        logs = []
        for i, problem in enumerate(problems):
            unit = {"problem_id": problem.id, "reference": problem.answer, "answer_kind": problem.answer_kind,
                    "prompt_tokens": len(prompts[i]), "meta": problem.meta,
                    "seconds": {"launch": {k: round(v * share, 4) for k, v in launch_seconds.items()},
                                "all_paths": round(total * share, 4),
                                "check": {name: {k: round(v * share, 4) for k, v in per.items()}
                                          for name, per in check_seconds.items()}}}
            log = ProblemLog(unit)
            for rec in (r for r in trace.records if r.problem_index == i):
                text = tok.decode(rec.tokens, skip_special_tokens=True)
                answer = extract_answer(text, problem.answer_kind)
                log.paths.append({
                    "problem_id": problem.id, "path_index": rec.path_index, "tokens": len(rec.tokens),
                    "finished": rec.finished, "answer": answer,
                    "correct": answers_equal(problem.answer, answer, problem.answer_kind),
                    "signals": scored.get((i, rec.path_index), {}), "text": text, "token_ids": list(rec.tokens)})
            logs.append(log)
        return logs
