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
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from ..engine.batch import LiveBatch
from ..engine.pruner import Pruner, reencoded_per_row, score_view
from ..engine.sampling import SamplingParams
from ..errors import PathpruneError
from ..signals import CheckView, Signal, get_signal
from ..tasks.answers import extract_answer
from ..tasks.grading import answers_equal
from ..tasks.problem import Problem


@dataclass
class ProblemLog:
    """One problem's shared run: ``unit`` row plus one row per path (JSON-ready)."""

    unit: dict
    paths: list[dict] = field(default_factory=list)


class SharedLaunch:
    """Launch N paths per problem, score them with every signal at every checkpoint, finish all.

    Args:
        model, tokenizer: from :func:`pathprune.load_model`.
        signals: registry specs (``"stop"``, ``"conf_lowest:8"``) or :class:`Signal` objects.
        checkpoints: prefix lengths L at which every signal scores the live paths.
        sampling: ``sampling.n`` is N; ``max_new_tokens`` bounds every path.
    """

    def __init__(self, model, tokenizer, signals: Sequence[Signal | str], checkpoints: Sequence[int],
                 sampling: SamplingParams, *, problems_per_batch: int = 4):
        if not signals:
            raise PathpruneError("give at least one signal")
        self.signals = [get_signal(s) for s in signals]
        self.names = [s if isinstance(s, str) else s.name for s in signals]
        if len(set(self.names)) != len(self.names):
            raise PathpruneError(f"signals given twice: {', '.join(self.names)}")
        self.checkpoints = sorted(set(int(c) for c in checkpoints))
        if not self.checkpoints or self.checkpoints[0] < 1 or self.checkpoints[-1] >= sampling.max_new_tokens:
            raise PathpruneError(f"checkpoints must lie in 1..{sampling.max_new_tokens - 1} "
                                 f"(max_new_tokens {sampling.max_new_tokens}), got {list(checkpoints)}")
        # the Pruner supplies prompt encoding and limits, EOS and banned ids: one definition for both
        self._base = Pruner(model, tokenizer, "random", None, sampling, problems_per_batch=problems_per_batch)
        self.model, self.tokenizer, self.sampling = model, tokenizer, sampling
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
        base, tok, params = self._base, self.tokenizer, self.sampling
        prompts = base.encode(problems)
        seed = params.seed if params.seed is not None else int(torch.randint(0, 2**62, ()).item())
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        decode = dict(params=params, eos=base.eos, banned=base.banned, top_logprobs=base.top_logprobs)
        # per (problem index, path index): {signal: {L: (score, check tokens, re-encoded tokens)}}
        scored: dict[tuple[int, int], dict[str, dict[str, list]]] = {}
        check_seconds: dict[str, dict[str, float]] = {name: {} for name in self.names}
        launch_seconds: dict[str, float] = {}

        t0 = time.perf_counter()
        batch = LiveBatch.launch(self.model, prompts, params.n, pad, seed,
                                 problem_keys=[zlib.crc32(p.id.encode()) for p in problems])
        records = list(batch.records)
        paused = 0.0
        for length in self.checkpoints:
            batch.decode_until(length, feed_last=True, **decode)
            launch_seconds[str(length)] = time.perf_counter() - t0 - paused
            if not len(batch):
                continue
            t1 = time.perf_counter()
            for name, signal in zip(self.names, self.signals):
                # stage 0 for every checkpoint: each (L, k) is scored as the single-stage run L:k
                view = CheckView(batch, problems, tok, stage=0, seed=seed)
                before, ts = batch.check_tokens, time.perf_counter()
                scores = score_view(signal, view).tolist()
                check_seconds[name][str(length)] = time.perf_counter() - ts
                per_row = (batch.check_tokens - before) // len(batch)
                for rec, score, reenc in zip(batch.records, scores, reencoded_per_row(view)):
                    slot = scored.setdefault((rec.problem_index, rec.path_index), {})
                    slot.setdefault(name, {})[str(length)] = [score, per_row, reenc]
            paused += time.perf_counter() - t1
        batch.decode_until(params.max_new_tokens, feed_last=False, **decode)
        total = time.perf_counter() - t0 - paused

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
            for rec in (r for r in records if r.problem_index == i):
                text = tok.decode(rec.tokens, skip_special_tokens=True)
                answer = extract_answer(text, problem.answer_kind)
                log.paths.append({
                    "problem_id": problem.id, "path_index": rec.path_index, "tokens": len(rec.tokens),
                    "finished": rec.finished, "answer": answer,
                    "correct": answers_equal(problem.answer, answer, problem.answer_kind),
                    "signals": scored.get((i, rec.path_index), {}), "text": text})
            logs.append(log)
        return logs
