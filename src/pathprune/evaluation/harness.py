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

Step checkpoints (``stepM/L``) are read off the same launch: each path pauses at
the first point where one of the checkpoints it has not been scored at yet is
reached (its own length for a step checkpoint), every signal scores it there,
and it goes on to its next one; a barrier waits for every path's next pause.
So fixed lengths and steps are compared on the very same paths. A barrier may
hold paths at different checkpoints: set-dependent signals then see their
neighbours there, and an external scorer's re-encoding charge is split over
all of them (kept sets and every other token count stay exact).

Records (one per path, grouped by problem) hold the path's length, answer and
correctness, per signal and checkpoint its score and the check and
re-encoding tokens charged to it, and (``checked_at``) the length at which each
step checkpoint scored it. Single-checkpoint schedules only: a cascade
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
from ..engine.schedule import checked_checkpoints, checkpoint_name
from ..engine.steps import Pause, StepCounter, checkpoint_pause
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
        checkpoints: prefix lengths L, or step checkpoints ``"stepM/L"``, at which every signal scores the live
            paths.
        sampling: ``sampling.n`` is N; ``max_new_tokens`` bounds every path; ``step_delimiter`` ends a step.
    """

    top_logprobs = 5  # the Pruner's default: confidence signals read the same top-k

    def __init__(self, model, tokenizer, signals: Sequence[Signal | str], checkpoints: Sequence[int | str],
                 sampling: SamplingParams, *, problems_per_batch: int = 4):
        if not signals:
            raise PathpruneError("give at least one signal")
        self.signals = [get_signal(s) for s in signals]
        for signal in self.signals:
            signal.validate()
        self.names = [s if isinstance(s, str) else s.name for s in signals]
        if len(set(self.names)) != len(self.names):
            raise PathpruneError(f"signals given twice: {', '.join(self.names)}")
        specs = set(checked_checkpoints(checkpoints, sampling.max_new_tokens))
        # (name, L, M): fixed lengths first, in order (each its own barrier, as before step checkpoints existed)
        self.specs = [(checkpoint_name(L, m), L, m) for L, m in sorted(specs, key=lambda c: (c[1] is not None, c))]
        self.checkpoints = [name for name, _, _ in self.specs]
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
        # per (problem index, path index): {signal: {checkpoint: (score, check tokens, re-encoded tokens)}}
        scored: dict[tuple[int, int], dict[str, dict[str, list]]] = {}
        check_seconds: dict[str, dict[str, float]] = {name: {} for name in self.names}
        counter = StepCounter(tok, params.step_delimiter)
        pauses = {name: checkpoint_pause(length, steps, counter) for name, length, steps in self.specs}
        seen: dict[tuple[int, int], set[str]] = {}  # checkpoints each path has been scored at
        lengths: dict[tuple[int, int], dict[str, int]] = {}  # where each step checkpoint scored it
        last_barrier: dict[str, int] = {}

        def due(rec, tokens: list[int]) -> bool:
            """Pause here: a checkpoint this path has not been scored at is reached (or none is left)."""
            done = seen.get((rec.problem_index, rec.path_index), set())
            left = [name for name in pauses if name not in done]
            return not left or any(pauses[name].reached(rec, tokens) for name in left)

        def on_check(batch: LiveBatch, barrier: int) -> None:
            fired = []
            for rec in batch.records:
                done = seen.setdefault((rec.problem_index, rec.path_index), set())
                now = [name for name in pauses if name not in done and pauses[name].reached(rec, rec.tokens)]
                done.update(now)
                fired.append(now)
                for name in now:
                    if pauses[name].early is not None:  # a step checkpoint: record the path's own length
                        lengths.setdefault((rec.problem_index, rec.path_index), {})[name] = len(rec.tokens)
            names_now = sorted({c for now in fired for c in now})
            if not names_now:
                return
            last_barrier.update((c, barrier) for c in names_now)
            for name, signal in zip(self.names, self.signals):
                # stage 0 for every checkpoint: each (checkpoint, k) is scored as the single-stage run C:k
                view = CheckView(batch, requests, tok, stage=0, seed=seed)
                before, ts = batch.check_tokens, time.perf_counter()
                scores = score_view(signal, view).tolist()
                elapsed = (time.perf_counter() - ts) / len(names_now)
                for c in names_now:
                    check_seconds[name][c] = check_seconds[name].get(c, 0.0) + elapsed
                per_row = (batch.check_tokens - before) // len(batch)
                for rec, score, reenc, now in zip(batch.records, scores, reencoded_per_row(view), fired):
                    slot = scored.setdefault((rec.problem_index, rec.path_index), {}).setdefault(name, {})
                    for c in now:
                        slot[c] = [score, per_row, reenc]

        # one barrier per checkpoint at most: each pauses every live path at its next checkpoint
        pause = Pause(max(length for _, length, _ in self.specs), due)
        trace = launch_check_resume(self.backend, prompts, [request_key(r.id) for r in requests], params, seed,
                                    [pause] * len(self.specs), on_check, self.top_logprobs)
        total = sum(trace.decode_seconds)
        launch_seconds = {c: sum(trace.decode_seconds[:last_barrier[c] + 1]) if c in last_barrier else total
                          for c in self.checkpoints}

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
                    "signals": scored.get((i, rec.path_index), {}), "text": text, "token_ids": list(rec.tokens),
                    **({"checked_at": lengths[i, rec.path_index]} if (i, rec.path_index) in lengths else {})})
            logs.append(log)
        return logs
