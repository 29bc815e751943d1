"""The user surface: plain prompts in, pruned answers out.

    >>> from pathprune import Pruner, SamplingParams
    >>> pruner = Pruner("testbed", signal="stop", schedule="16:4")
    >>> outs = pruner.generate(["C 2 + 3 * 4 - 1 ="], SamplingParams(n=8, max_new_tokens=80))  # doctest: +SKIP
    >>> outs[0].answer, outs[0].paths[0].kept, outs[0].usage.generated                        # doctest: +SKIP

Paths are paused at each checkpoint, scored by the signal, and only the best
paths of each prompt resume; pruning is always a within-prompt decision.
Paths that end (EOS) before a checkpoint are complete: they are not ranked,
they keep their answer and they vote, beside the k resumed paths. No reference
answers are involved: grading is a separate step (:mod:`pathprune.evaluation`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import PathpruneError
from ..tasks.answers import extract_answer
from .accounting import StageTimes, TokenUsage
from .backend import Backend, TransformersBackend
from .batch import LiveBatch, PathRecord, rows_by_problem
from .contract import CheckView, Signal
from .loop import check_context, launch_check_resume, request_key, resolve_seed
from .per_request import per_request_check_resume
from .registry import get_signal
from .request import Prompt, Request, prompt_id, prompt_kind, question_of
from .sampling import SamplingParams
from .schedule import Schedule, Stage
from .steps import stage_pauses
from .selection import majority, select_kept

BACKENDS = ("transformers", "vllm")


@dataclass
class PathOutput:
    """One sampled path."""

    index: int
    """Path index within its request (0..N-1)."""
    token_ids: list[int]
    """Generated tokens (EOS included when the path finished; a pruned path's prefix)."""
    text: str
    answer: str | None
    """The path's extracted answer (None when pruned or when none was written)."""
    finished: bool
    """Ended with EOS (False: cut by max_new_tokens or pruned)."""
    kept: bool
    pruned_at: int | None
    """Index of the schedule stage that pruned it."""
    scores: list[float]
    """The signal's score at each checkpoint the path reached alive."""
    checked_at: list[int] = field(default_factory=list)
    """Generated tokens it had at each of those checkpoints (with step checkpoints each path its own)."""

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class RequestOutput:
    """One prompt's result: its paths, the kept paths' vote, and what it cost."""

    request_id: str
    prompt_token_ids: list[int]
    paths: list[PathOutput]
    answer: str | None
    """Majority vote of the kept paths' answers (ties: the earliest path)."""
    usage: TokenUsage
    times: StageTimes
    memory: dict = field(default_factory=dict)
    prefix_cache: dict = field(default_factory=dict)
    """vLLM backend: prompt tokens sent and read from its prefix cache per phase ("launch", "check",
    "resume"), e.g. ``{"check": {"tokens": 560, "cached": 512, "share": 0.914}}``; empty on transformers."""


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


def keep_rows(records: list[PathRecord], scores: torch.Tensor, stage: Stage) -> list[int]:
    """Rows to keep, chosen within each problem (:func:`~pathprune.engine.selection.select_kept`)."""
    kept: list[int] = []
    for rows in rows_by_problem(records):
        by_index = {records[r].path_index: r for r in rows}
        chosen = select_kept([(records[r].path_index, scores[r].item()) for r in rows], stage.keep, stage.threshold)
        kept += [by_index[i] for i in chosen]
    return sorted(kept)


def logprobs_read(signal: Signal, top_logprobs: int) -> int | None:
    """What a run records per token for ``signal``'s checks: None (no log-probabilities), 0 (the sampled
    token's) or ``top_logprobs`` (also the top k), by what the signal reads (:attr:`Signal.needs`)."""
    if "top_logprobs" in signal.needs:
        return top_logprobs
    return 0 if "logprobs" in signal.needs else None


def _is_single(prompts) -> bool:
    """One prompt rather than a list of them: text, one chat (dicts) or one list of token ids."""
    if isinstance(prompts, str):
        return True
    return isinstance(prompts, Sequence) and bool(prompts) and all(
        isinstance(x, Mapping) or (isinstance(x, int) and not isinstance(x, bool)) for x in prompts)


class Pruner:
    """Sample N paths per prompt, prune them at the schedule's checkpoints, finish the rest, vote.

    Args:
        model: an embedded name (``"testbed"``, ``"smollm2-135m"``), a Hugging Face directory, a ``.gguf``
            file, a ``(model, tokenizer)`` pair, or a model object with ``tokenizer=``.
        signal: a :class:`Signal` or a registry spec such as ``"stop"`` or ``"conf_lowest:8"``.
        schedule: ``"L:k[,L:k...]"``, a :class:`Schedule`, ``"none"`` or None for no pruning.
        answer_kind: how answers are extracted (``"math"``, ``"choice"``, ``"testbed"``, ``"text"``);
            default ``"testbed"`` for the testbed model, else ``"math"``.
        problems_per_batch: prompts sampled together (N rows each).
        top_logprobs: top-k log-probabilities kept per token for confidence signals (a run records only what
            its signal reads, :attr:`Signal.needs`: nothing for random or stop, the sampled token's for mean_logprob).
        backend: ``"transformers"`` (pathprune's own decode loop, the default) or ``"vllm"`` (a vLLM engine
            built from the model's directory; the signal's model plugin, e.g. STOP's, loaded into it).
        engine_args: extra arguments for ``vllm.LLM`` (backend ``"vllm"`` only).
        per_request_checks: on a backend that streams (vLLM), check each request when its own paths reach a
            checkpoint while the others keep decoding, up to ``problems_per_batch`` requests in flight, a
            finished one's slots going to the next at once (no global barrier; the same paths and kept sets).
            False: every request of a batch waits for the others at each checkpoint, as on transformers.
    """

    def __init__(self, model="testbed", signal: Signal | str = "random", schedule: Schedule | str | None = None,
                 *, tokenizer=None, answer_kind: str | None = None, problems_per_batch: int = 4,
                 top_logprobs: int = 5, backend: str = "transformers", engine_args: dict | None = None,
                 per_request_checks: bool = True):
        if backend not in BACKENDS:
            raise PathpruneError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}",
                                 parameter="backend", value=backend)
        if problems_per_batch < 1:
            raise PathpruneError(f"problems_per_batch must be >= 1, got {problems_per_batch}")
        if top_logprobs < 0:
            raise PathpruneError(f"top_logprobs must be >= 0, got {top_logprobs}")
        if isinstance(model, (str, Path)) and str(model) == "testbed":
            answer_kind = answer_kind or "testbed"
        self.signal = get_signal(signal)
        self.signal.validate()  # a bad checkpoint fails now, even when the schedule prunes nothing
        if backend == "vllm":
            from .vllm_backend import load_vllm_backend, model_directory

            directory = model_directory(model)
            self.backend: Backend = load_vllm_backend(directory, hf_overrides=self.signal.vllm_overrides(directory),
                                                      **(engine_args or {}))
            self.model, self.tokenizer = None, self.backend.tokenizer
        else:
            if engine_args:
                raise PathpruneError("engine_args are for backend='vllm'", parameter="engine_args")
            if isinstance(model, (str, Path)):
                from ..models import load_model

                model, tokenizer = load_model(str(model))
            elif isinstance(model, tuple):
                model, tokenizer = model
            if tokenizer is None:
                raise PathpruneError("give the model's tokenizer: Pruner((model, tokenizer)) or tokenizer=")
            self.model, self.tokenizer = model, tokenizer
            self.backend = TransformersBackend(model, tokenizer)
        self.schedule = Schedule.of(schedule)
        self.answer_kind = answer_kind or "math"
        self.problems_per_batch, self.top_logprobs = problems_per_batch, top_logprobs
        self.per_request_checks = per_request_checks and self.backend.per_request_checks

    # -- the user surface ----------------------------------------------------------------------
    def generate(self, prompts: Prompt | Sequence[Prompt], params: SamplingParams | None = None, *,
                 signal: Signal | str | None = None, schedule: Schedule | str | None = None,
                 answer_kind: str | None = None, request_ids: Sequence[str] | None = None,
                 abort: Callable[[int], bool] | None = None,
                 progress: Callable[[int], None] | None = None) -> list[RequestOutput]:
        """Pruned parallel reasoning for each prompt (text, chat messages or token ids); outputs in input order.

        ``signal`` and ``schedule`` override the pruner's for this call. ``request_ids`` key each prompt's random
        streams (default: a hash of its token ids). ``abort(i)`` is asked after every checkpoint: True drops
        prompt i's paths at once (a server's cancelled request). ``progress(k)`` follows each batch of k prompts.
        """
        prompts = [prompts] if _is_single(prompts) else list(prompts)
        if not prompts:
            raise PathpruneError("give at least one prompt")
        if request_ids is not None and len(request_ids) != len(prompts):
            raise PathpruneError(f"{len(request_ids)} request_ids for {len(prompts)} prompts")
        kind = answer_kind or self.answer_kind
        requests = []
        for i, prompt in enumerate(prompts):
            prompt_kind(prompt)  # a one-line error for what is not a prompt
            ids = self.backend.encode(prompt)
            rid = request_ids[i] if request_ids is not None else prompt_id(ids)
            requests.append(Request(rid, tuple(ids), question_of(self.tokenizer, prompt), kind))
        return self.run(requests, params, signal=signal, schedule=schedule, abort=abort, progress=progress)

    def run(self, requests: Sequence[Request], params: SamplingParams | None = None, *,
            signal: Signal | str | None = None, schedule: Schedule | str | None = None,
            abort: Callable[[int], bool] | None = None, progress: Callable[[int], None] | None = None,
            problems_per_batch: int | None = None) -> list[RequestOutput]:
        """:meth:`generate` for prompts already encoded as :class:`Request` objects (evaluation attaches
        references there for label-reading signals; a server runs its merged requests as one batch)."""
        params = params or SamplingParams()
        if signal is not None:
            signal = get_signal(signal)
            signal.validate()
            self._check_plugin(signal)
        signal = signal or self.signal
        schedule = (self.schedule if schedule is None else Schedule.of(schedule)).check(params.n,
                                                                                      params.max_new_tokens)
        requests = list(requests)
        names = [f"prompt {i}" if len(requests) > 1 else "prompt" for i in range(len(requests))]
        check_context(self.backend, [list(r.prompt_ids) for r in requests], params.max_new_tokens, names)
        per_batch = problems_per_batch or self.problems_per_batch
        if self.per_request_checks:  # one stream, at most per_batch requests in flight
            done = None if progress is None else (lambda i: progress(1))
            return self._run_batch(requests, params, signal, schedule, abort, max_active=per_batch, on_done=done)
        out: list[RequestOutput] = []
        for start in range(0, len(requests), per_batch):
            chunk = requests[start:start + per_batch]
            drop = None if abort is None else (lambda i, start=start: abort(start + i))
            out += self._run_batch(chunk, params, signal, schedule, drop)
            if progress:
                progress(len(chunk))
        return out

    def _check_plugin(self, signal: Signal) -> None:
        """A per-call signal on the vLLM backend needs the model plugin the engine was built with."""
        if getattr(self.backend, "name", "") != "vllm":
            return
        directory = self.backend.path
        wanted = signal.vllm_overrides(directory)
        if wanted and wanted != self.signal.vllm_overrides(directory):
            raise PathpruneError(f"signal {signal.name!r} needs another vLLM model plugin than this engine's "
                                 f"({self.signal.name!r}); build a Pruner with it")

    @torch.no_grad()
    def _run_batch(self, requests: list[Request], params: SamplingParams, signal: Signal, schedule: Schedule,
                   abort: Callable[[int], bool] | None, max_active: int | None = None,
                   on_done: Callable[[int], None] | None = None) -> list[RequestOutput]:
        seed = resolve_seed(params.seed)
        check_tokens, reencoded, memory = Counter(), Counter(), {}

        def on_check(batch: LiveBatch, s: int) -> None:
            """Score the paused paths, mark the losers pruned and drop their cache rows."""
            view = CheckView(batch, requests, self.tokenizer, stage=s, seed=seed)
            before = batch.check_tokens
            scores = score_view(signal, view)
            per_row = (batch.check_tokens - before) // len(batch)
            for rec, score, reenc in zip(batch.records, scores.tolist(), reencoded_per_row(view)):
                rec.scores.append(score)
                check_tokens[rec.problem_index] += per_row
                reencoded[rec.problem_index] += reenc
            kept = keep_rows(batch.records, scores, schedule.stages[s])
            for row in set(range(len(batch))) - set(kept):
                batch.records[row].pruned_at = s
            memory.setdefault("cache_bytes_before_first_prune", batch.cache_bytes())
            self.backend.select(batch, kept)
            memory.setdefault("cache_bytes_after_first_prune", batch.cache_bytes())
            if abort is not None:
                live = [row for row, rec in enumerate(batch.records) if not abort(rec.problem_index)]
                if len(live) < len(batch):
                    self.backend.select(batch, live)  # frees aborted requests' cache rows now, not at the end

        run = dict(prompts=[list(r.prompt_ids) for r in requests], keys=[request_key(r.id) for r in requests],
                   params=params, seed=seed, on_check=on_check,
                   checkpoints=stage_pauses(schedule.stages, self.tokenizer, params.step_delimiter),
                   top_logprobs=logprobs_read(signal, self.top_logprobs) if schedule.stages else None,
                   finish_logprobs=False)
        if max_active is None:
            trace = launch_check_resume(self.backend, **run)
        else:
            trace = per_request_check_resume(self.backend, **run, max_active=max_active, on_done=on_done)
        decode = trace.decode_seconds
        times = StageTimes(launch=decode[0], check=sum(trace.check_seconds), resume=sum(decode[1:]))
        times = times.scaled(1 / len(requests))
        stages = len(schedule.stages)
        outs = [self._output(r, [rec for rec in trace.records if rec.problem_index == i], stages,
                             check_tokens[i], reencoded[i], times, memory)
                for i, r in enumerate(requests)]
        for (i, phase), hits in sorted(trace.prefix_cache.items()):
            outs[i].prefix_cache[phase] = hits.as_dict()
        return outs

    def _output(self, request: Request, records: list[PathRecord], stages: int, check_tokens: int,
                reencoded: int, times: StageTimes, memory: dict) -> RequestOutput:
        usage = TokenUsage(prompt=len(request.prompt_ids), check=check_tokens, reencoded=reencoded)
        paths = []
        for rec in records:
            n_tok = len(rec.tokens)
            if rec.pruned_at is not None:
                usage.pruned_prefix += n_tok
            else:  # the prefix: what it had at the last checkpoint (all of it when it ended before; none unpruned)
                prefix = (rec.checked_at[-1] if len(rec.checked_at) == stages else n_tok) if stages else 0
                usage.kept_prefix += prefix
                usage.kept_continuation += n_tok - prefix
            text = self.tokenizer.decode(rec.tokens, skip_special_tokens=True)
            answer = extract_answer(text, request.answer_kind) if rec.pruned_at is None else None
            paths.append(PathOutput(rec.path_index, list(rec.tokens), text, answer, rec.finished,
                                    rec.pruned_at is None, rec.pruned_at, rec.scores, list(rec.checked_at)))
        voted = majority([p.answer for p in paths if p.kept])
        return RequestOutput(request.id, list(request.prompt_ids), paths, voted, usage, times, memory)
