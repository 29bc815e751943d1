"""Launch–Check–Resume over many problems: the engine's user-facing surface.

    >>> from pathprune import load_model, SamplingParams
    >>> from pathprune.engine import Pruner
    >>> model, tok = load_model("testbed")
    >>> pruner = Pruner(model, tok, signal="mean_logprob", schedule="24:4",
    ...                 sampling=SamplingParams(n=16, max_new_tokens=160))
    >>> results = pruner.run(problems)                     # doctest: +SKIP
    >>> results[0].correct, results[0].usage.generated     # doctest: +SKIP

Paths are paused at each checkpoint, scored by the signal, and only the best
paths of each problem resume; pruning is always a within-problem decision.
Paths that end (EOS) before a checkpoint are complete: they are not ranked,
they keep their answer and they vote, beside the k resumed paths.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import torch

from ..errors import PathpruneError
from ..signals import CheckView, Signal, get_signal
from ..tasks.grading import answers_equal
from ..tasks.answers import extract_answer
from ..tasks.problem import Problem
from .accounting import StageTimes, TokenUsage
from .batch import LiveBatch, PathRecord, rows_by_problem
from .sampling import SamplingParams, encode_problem, eos_ids, suppressed_ids
from .schedule import Schedule, Stage


@dataclass
class PathResult:
    path_index: int
    tokens: int
    text: str
    answer: str | None
    correct: bool
    finished: bool
    """Ended with EOS (False: cut by max_new_tokens or pruned)."""
    kept: bool
    pruned_at: int | None
    scores: list[float]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ProblemResult:
    problem: Problem
    paths: list[PathResult]
    answer: str | None
    """Majority vote of the kept paths' answers (ties: the earliest path)."""
    correct: bool
    usage: TokenUsage
    times: StageTimes
    memory: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"problem_id": self.problem.id, "reference": self.problem.answer, "answer": self.answer,
                "correct": self.correct, "usage": self.usage.as_dict(), "times": self.times.as_dict(),
                "memory": self.memory}


def tie_key(score: float) -> float:
    """Scores equal to 5 significant digits tie: paths with identical prefixes get scores that
    differ only by float noise (~1e-7, from the batch layout), which must not decide the ranking.
    (Noise straddling a rounding boundary can still split a tie; that is rare.)"""
    return float(f"{score:.5g}")


def keep_rows(records: list[PathRecord], scores: torch.Tensor, stage: Stage) -> list[int]:
    """Rows to keep, chosen within each problem; ties go to the lower path index."""
    kept: list[int] = []
    for rows in rows_by_problem(records):
        order = sorted(rows, key=lambda r: (-tie_key(scores[r].item()), records[r].path_index))
        if stage.keep is not None:
            kept += order[: stage.keep]
        else:
            kept += [r for r in order if scores[r].item() >= stage.threshold] or order[:1]
    return sorted(kept)


def score_view(signal: Signal, view: CheckView) -> torch.Tensor:
    """The signal's scores for the view's rows, shape-checked; NaN ranks last."""
    scores = torch.as_tensor(signal.score(view), dtype=torch.float32).flatten().cpu()
    if scores.shape != (len(view.records),):
        raise PathpruneError(f"signal {signal.name!r} returned {tuple(scores.shape)} scores "
                             f"for {len(view.records)} paths")
    return torch.nan_to_num(scores, nan=-math.inf)


def reencoded_per_row(view: CheckView) -> list[int]:
    """An external judge's re-encoding charge split over the rows in whole tokens (sums exactly)."""
    share, extra = divmod(view.reencoded_tokens, len(view.records))
    return [share + (row < extra) for row in range(len(view.records))]


def majority(answers: list[str | None]) -> str | None:
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None


class Pruner:
    """Sample N paths per problem, prune them at the schedule's checkpoints, finish the rest, vote.

    Args:
        model, tokenizer: from :func:`pathprune.load_model`.
        signal: a :class:`Signal` or a registry spec such as ``"random"``.
        schedule: ``"L:k[,L:k...]"``, a :class:`Schedule`, or None for no pruning.
        sampling: sampling parameters; ``sampling.n`` is N, the paths per problem.
        problems_per_batch: problems sampled together (N rows each).
        top_logprobs: top-k log-probabilities kept per token for confidence signals.
    """

    def __init__(self, model, tokenizer, signal: Signal | str = "random", schedule: Schedule | str | None = None,
                 sampling: SamplingParams | None = None, *, problems_per_batch: int = 4, top_logprobs: int = 5):
        self.model, self.tokenizer = model, tokenizer
        self.signal = get_signal(signal)
        self.sampling = sampling or SamplingParams()
        if isinstance(schedule, str):
            schedule = Schedule.parse(schedule) if schedule not in ("", "none") else Schedule.none()
        self.schedule = (schedule or Schedule.none()).validate(self.sampling.n, self.sampling.max_new_tokens)
        if problems_per_batch < 1:
            raise PathpruneError(f"problems_per_batch must be >= 1, got {problems_per_batch}")
        self.problems_per_batch, self.top_logprobs = problems_per_batch, top_logprobs
        self.eos = torch.tensor(sorted(eos_ids(model, tokenizer)), dtype=torch.long)
        self.banned = torch.tensor(suppressed_ids(model, tokenizer), dtype=torch.long)
        self._limit = getattr(model.config, "max_position_embeddings", None)

    def run(self, problems: list[Problem], progress=None) -> list[ProblemResult]:
        """Results in input order; ``progress(k)`` is called after each batch of k problems."""
        out: list[ProblemResult] = []
        for start in range(0, len(problems), self.problems_per_batch):
            chunk = problems[start:start + self.problems_per_batch]
            out += self._run_batch(chunk)
            if progress:
                progress(len(chunk))
        return out

    def encode(self, problems: list[Problem]) -> list[list[int]]:
        """Prompt token ids, checked against the model's context (subclasses may supply their own)."""
        prompts = [encode_problem(self.tokenizer, p) for p in problems]
        for p, ids in zip(problems, prompts):
            if self._limit and len(ids) + self.sampling.max_new_tokens > self._limit:
                raise PathpruneError(f"problem {p.id!r}: prompt ({len(ids)} tokens) + max_new_tokens "
                                     f"({self.sampling.max_new_tokens}) exceeds the model's context of {self._limit}")
        return prompts

    def after_check(self, batch: LiveBatch) -> None:
        """Called after every checkpoint's pruning with the surviving rows; a subclass may drop more
        (``batch.select``), e.g. a server dropping cancelled requests. Default: nothing."""

    @torch.no_grad()
    def _run_batch(self, problems: list[Problem]) -> list[ProblemResult]:
        prompts = self.encode(problems)
        seed = self.sampling.seed if self.sampling.seed is not None else int(torch.randint(0, 2**62, ()).item())
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        times, memory, check_per_problem, reenc = StageTimes(), {}, Counter(), Counter()

        t0 = time.perf_counter()
        batch = LiveBatch.launch(self.model, prompts, self.sampling.n, pad, seed,
                                 problem_keys=[zlib.crc32(p.id.encode()) for p in problems])
        records = list(batch.records)
        decode = dict(params=self.sampling, eos=self.eos, banned=self.banned,
                      top_logprobs=self.top_logprobs)
        for s, stage in enumerate(self.schedule.stages):
            batch.decode_until(stage.prefix_tokens, feed_last=True, **decode)
            t1 = time.perf_counter()
            if s == 0:
                times.launch += t1 - t0
            else:
                times.resume += t1 - t0
            if not len(batch):
                t0 = t1
                break
            self._check(batch, problems, s, stage, seed, check_per_problem, reenc, memory)
            self.after_check(batch)
            t0 = time.perf_counter()
            times.check += t0 - t1
        batch.decode_until(self.sampling.max_new_tokens, feed_last=False, **decode)
        t1 = time.perf_counter()
        if self.schedule.stages:
            times.resume += t1 - t0
        else:
            times.launch += t1 - t0
        return [self._result(p, len(prompts[i]), [r for r in records if r.problem_index == i],
                             check_per_problem[i], reenc[i], times.scaled(1 / len(problems)), memory)
                for i, p in enumerate(problems)]

    def _check(self, batch: LiveBatch, problems: list[Problem], s: int, stage: Stage, seed: int,
               check_tokens: Counter, reencoded: Counter, memory: dict) -> None:
        """Score the paused paths, mark the losers pruned and drop their cache rows."""
        view = CheckView(batch, problems, self.tokenizer, stage=s, seed=seed)
        before = batch.check_tokens
        scores = score_view(self.signal, view)
        per_row = (batch.check_tokens - before) // len(batch)
        for rec, score, reenc in zip(batch.records, scores.tolist(), reencoded_per_row(view)):
            rec.scores.append(score)
            check_tokens[rec.problem_index] += per_row
            reencoded[rec.problem_index] += reenc
        kept = keep_rows(batch.records, scores, stage)
        for row in set(range(len(batch))) - set(kept):
            batch.records[row].pruned_at = s
        memory.setdefault("cache_bytes_before_first_prune", batch.cache_bytes())
        batch.select(kept)
        memory.setdefault("cache_bytes_after_first_prune", batch.cache_bytes())

    def _result(self, problem, prompt_len, records, check_tokens, reencoded, times, memory) -> ProblemResult:
        last = self.schedule.stages[-1].prefix_tokens if self.schedule.stages else 0
        usage = TokenUsage(prompt=prompt_len, check=check_tokens, reencoded=reencoded)
        paths = []
        for rec in records:
            n_tok = len(rec.tokens)
            if rec.pruned_at is not None:
                usage.pruned_prefix += n_tok
            else:
                usage.kept_prefix += min(n_tok, last)
                usage.kept_continuation += max(0, n_tok - last)
            text = self.tokenizer.decode(rec.tokens, skip_special_tokens=True)
            answer = extract_answer(text, problem.answer_kind) if rec.pruned_at is None else None
            paths.append(PathResult(rec.path_index, n_tok, text, answer,
                                    answers_equal(problem.answer, answer, problem.answer_kind),
                                    rec.finished, rec.pruned_at is None, rec.pruned_at, rec.scores))
        voted = majority([p.answer for p in paths if p.kept])
        return ProblemResult(problem, paths, voted, answers_equal(problem.answer, voted, problem.answer_kind),
                             usage, times, memory)
