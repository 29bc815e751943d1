"""Pruned rollouts for TRL's ``GRPOTrainer``: per prompt, Launch N samples, Check them at the checkpoint(s),
Resume the best, and hand the trainer the group it expects.

    >>> from pathprune.integrations.trl import pruned_rollout
    >>> rollout = pruned_rollout("stop", "16:6")          # G = 12 launched, the 6 best at 16 tokens finished
    >>> trainer = GRPOTrainer(model=policy, processing_class=tokenizer,      # doctest: +SKIP
    ...                       args=GRPOConfig(num_generations=12, max_completion_length=160),
    ...                       reward_funcs=rollout.reward(correct), rollout_func=rollout, train_dataset=prompts)

The contract (TRL >= 1.16, ``rollout_func``, experimental): the trainer calls ``rollout_func(prompts, trainer)``
with its per-process prompts, each prompt repeated ``num_generations`` (G) times in a row, and expects one
completion per entry: a dict with ``prompt_ids``, ``completion_ids`` and ``logprobs`` (lists, one per
completion); every other key is a per-completion field that the trainer forwards to the reward functions
(:data:`FIELDS`: pruned or not, checkpoint scores, tokens spent).

What a pruned sample contributes to the loss (``pruned=``, measured in ``docs/rl.md``):

* ``"truncate"`` (default): every launched path stays in the group (N = G): kept paths complete, pruned
  paths as their prefix (no EOS) with the fixed reward ``pruned_reward`` (0: counted as a failure) that
  :meth:`PrunedRollout.reward` gives them. The group keeps its failures, so GRPO keeps its contrast, and a
  pruned prefix pushes down only its own L tokens. The price is bias where the signal is wrong: a prefix that
  would have ended right is pushed down too (the policy is trained for "be kept by the signal, then be right").
* ``"drop"``: the pruned prefixes leave the group. N > G paths are launched, the schedule keeps k = G and
  finishes them, and the group is those G completions: no invented reward, but a *selected* sample (the
  signal's best of N), whose groups are more often all right (zero advantage, no gradient). On the testbed
  it learns less per token than no pruning at all.

Rollouts use the policy's current weights: the rollout keeps one generation copy of the trainer's model (the
STOP adapter and head attach to the copy, never to the trained model) and copies the weights into it before
every rollout, as TRL does for its vLLM engine. The signal's drift (``docs/rl.md``): a fixed STOP module reads
the current policy's cache with weights fitted on the initial policy; Type III signals (``mean_logprob``,
``conf_lowest``) read the current policy's own token confidence; ``refit_every=M`` re-fits STOP's head
(``refit="head+adapter"``: also its [STOP] embeddings and adapter) every M steps on the trainer's own
rollouts, labelled with their final rewards (no extra Monte-Carlo sampling) (:mod:`.stop_refit`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..engine.contract import Signal
from ..engine.pruner import Pruner, RequestOutput
from ..engine.registry import get_signal
from ..engine.request import Request, question_of
from ..engine.sampling import SamplingParams
from ..engine.schedule import Schedule
from ..errors import PathpruneError
from ..signals.stop_signal import StopSignal
from ..stop.scorer_training import TrainConfig
from .stop_refit import RefitStop, refit_stop

MODES = ("drop", "truncate")
REFIT = ("head", "head+adapter")
FIELDS = ("pruned", "pruned_at", "checkpoint_scores", "path_tokens", "group_tokens", "group_check_tokens",
          "group_launched", "group_dropped", "path_index", "rollout_key")
"""The per-completion fields the rollout forwards to the reward functions."""
@dataclass
class RolloutTotals:
    """Everything the rollouts spent so far (tokens are generated tokens unless named otherwise)."""

    calls: int = 0
    groups: int = 0
    launched: int = 0
    """Paths launched."""
    returned: int = 0
    """Completions handed to the trainer."""
    pruned: int = 0
    """Paths pruned at a checkpoint."""
    generated: int = 0
    """Every generated token, pruned prefixes and dropped paths included (the paper's "total tokens")."""
    returned_tokens: int = 0
    """Tokens of the completions handed to the trainer (what it trains on)."""
    check: int = 0
    """Tokens appended by the signal at the checkpoints (e.g. [STOP] tokens x paths)."""
    prompt: int = 0
    """Prompt tokens prefilled (once per group)."""

    def as_dict(self) -> dict:
        return asdict(self)


class _Recorder:
    """The pruner's backend, remembering every launched path's record: the Pruner's outputs carry each path's
    tokens but not its log-probabilities, which the trainer's contract asks for."""

    def __init__(self, inner):
        self.inner = inner
        self.batches: list[list] = []

    def launch(self, prompts, n, seed, keys):
        batch = self.inner.launch(prompts, n, seed, keys)
        self.batches.append(list(batch.records))
        return batch

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _fresh_copy(policy):
    """A new model of the policy's class and config holding its weights. Not ``copy.deepcopy``: a trainer
    patches its model (accelerate's wrapped ``forward``, transformers' output-capturing hooks), and a deep copy
    would carry a ``forward`` still bound to the trained model, so an adapter attached to the copy would be
    bypassed."""
    try:
        fresh = type(policy)(copy.deepcopy(policy.config))
        fresh.load_state_dict(policy.state_dict())
    except Exception as err:  # noqa: BLE001  (any model the trainer holds)
        raise PathpruneError(f"cannot build the generation copy of the policy ({type(policy).__name__}): "
                             f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if getattr(policy, "generation_config", None) is not None:
        fresh.generation_config = copy.deepcopy(policy.generation_config)
    param = next(policy.parameters())
    fresh = fresh.to(device=param.device, dtype=param.dtype).eval()
    fresh.requires_grad_(False)
    return fresh


def _policy_of(trainer):
    model = trainer.model
    accelerator = getattr(trainer, "accelerator", None)
    return accelerator.unwrap_model(model) if accelerator is not None else model


@dataclass
class PrunedRollout:
    """A TRL ``rollout_func`` (call it as ``rollout(prompts, trainer)``) that prunes with a pathprune signal.

    Build it with :func:`pruned_rollout`; its arguments are documented there.
    """

    signal: Signal | None
    schedule: Schedule
    n: int | None
    pruned: str = "truncate"
    pruned_reward: float = 0.0
    model: object = None
    tokenizer: object = None
    seed: int = 0
    problems_per_batch: int = 8
    top_logprobs: int = 5
    refit_every: int | None = None
    refit: str = "head"
    refit_config: TrainConfig | None = None
    refit_dir: str | Path | None = None
    max_new_tokens: int | None = None
    """Completion length for calls without a trainer (a trainer's ``max_completion_length`` wins)."""
    totals: RolloutTotals = field(default_factory=RolloutTotals)
    history: list[dict] = field(default_factory=list)
    """One row per call: step, groups, tokens, pruned paths."""
    refits: list[dict] = field(default_factory=list)
    """One row per STOP re-fit: step, records, the kept epoch's validation metrics."""

    def __post_init__(self) -> None:
        self._copy = None
        self._policy = None
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._pruner: Pruner | None = None
        self._recorder: _Recorder | None = None
        self._pending: dict[str, list[dict]] = {}
        self._labelled: list[dict] = []
        self._labels_seen = False
        self._last_refit = 0
        self._step = 0

    # -- the policy's weights ----------------------------------------------------------------
    @property
    def generation_model(self):
        """The copy of the policy the rollouts generate with (its weights synced before every rollout)."""
        return self._copy

    def sync(self, policy, tokenizer=None):
        """Copy ``policy``'s current weights into the generation copy (built, with the signal's module attached,
        on the first call); returns the copy."""
        if hasattr(policy, "peft_config"):
            raise PathpruneError("a PEFT-wrapped policy is not supported by the pruned rollout yet: train full "
                                 "weights, or merge the adapter before training")
        if self._copy is None or self._policy is not policy:
            tokenizer = tokenizer if tokenizer is not None else self.tokenizer
            if tokenizer is None:
                raise PathpruneError("the pruned rollout needs the policy's tokenizer: pass tokenizer= or run it "
                                     "from a GRPOTrainer (its processing_class)")
            self.tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor's tokenizer
            self._copy = _fresh_copy(policy)
            self._policy = policy
            if isinstance(self.signal, StopSignal):  # attached now, to the weights it was trained for
                self.signal.module_for(self._copy)
            self._pruner = Pruner((self._copy, self.tokenizer), self.signal or "random", self.schedule,
                                  answer_kind="text", problems_per_batch=self.problems_per_batch,
                                  top_logprobs=self.top_logprobs)
            self._recorder = _Recorder(self._pruner.backend)
            self._pruner.backend = self._recorder
            self._pairs = self._sync_pairs(self._copy, policy)
        with torch.no_grad():
            for dst, src in self._pairs:
                dst.copy_(src.detach())
        return self._copy

    @staticmethod
    def _sync_pairs(dst_model, src_model) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(copy parameter, policy parameter) pairs by name; the copy's attached adapters are skipped."""
        src = dict(src_model.named_parameters())
        pairs = []
        for name, p in dst_model.named_parameters():
            if "lora_" in name:
                continue
            key = name.replace(".base_layer", "")
            if key not in src:
                raise PathpruneError(f"cannot sync the generation copy: the policy has no parameter {key!r}")
            pairs.append((p, src[key]))
        if len(pairs) != len(src):
            raise PathpruneError(f"cannot sync the generation copy: {len(pairs)} of the policy's {len(src)} "
                                 "parameters matched")
        return pairs

    # -- the rollout ---------------------------------------------------------------------------
    def group_size(self, trainer=None) -> int:
        """G: completions per prompt the trainer expects (without a trainer: what this rollout returns)."""
        if trainer is not None:
            training = getattr(trainer.model, "training", True)
            g = trainer.num_generations if training else (trainer.num_generations_eval or trainer.num_generations)
            return int(g)
        if self.pruned == "drop" and self.schedule.stages:
            return self.schedule.stages[-1].keep
        if self.n is None:
            raise PathpruneError("without a trainer, give n= (paths per prompt)")
        return self.n

    def launched(self, g: int) -> int:
        """N: paths launched per prompt for a group of G."""
        prunes = bool(self.schedule.stages)
        if not prunes or self.pruned == "truncate":
            if self.n is not None and self.n != g:
                what = "without pruning" if not prunes else "with pruned='truncate' (the group is every launched path)"
                raise PathpruneError(f"n={self.n} but the trainer's group is G={g}: {what} n must equal "
                                     "num_generations", parameter="n", value=self.n)
            return g
        k = self.schedule.stages[-1].keep
        if k != g:
            raise PathpruneError(f"pruned='drop' returns the schedule's last k={k} paths per prompt but the trainer's "
                                 f"group is G={g}: set num_generations={k} or end the schedule at :{g}",
                                 parameter="schedule", value=str(self.schedule))
        if self.n is None or self.n <= g:
            raise PathpruneError(f"pruned='drop' launches more paths than the group keeps: need n > {g}, got {self.n}",
                                 parameter="n", value=self.n)
        return self.n

    def _sampling(self, trainer, n: int) -> SamplingParams:
        if trainer is None:
            return SamplingParams(n=n, max_new_tokens=self.max_new_tokens or 256, seed=self.seed)
        if getattr(trainer, "use_vllm", False):
            raise PathpruneError("the pruned rollout generates in this process with the transformers backend; "
                                 "set use_vllm=False in GRPOConfig")
        if getattr(trainer, "min_p", None) or getattr(trainer, "repetition_penalty", 1.0) not in (None, 1.0):
            raise PathpruneError("the pruned rollout samples with temperature, top_p and top_k only; leave min_p "
                                 "and repetition_penalty unset in GRPOConfig")
        if self.pruned == "truncate" and self.schedule.stages and getattr(trainer, "mask_truncated_completions", False):
            raise PathpruneError("pruned='truncate' trains on the pruned prefixes, which end without EOS; "
                                 "mask_truncated_completions=True would mask them out: set it to False")
        top_k = trainer.top_k or 0
        return SamplingParams(n=n, temperature=trainer.temperature, top_p=trainer.top_p, top_k=top_k,
                              max_new_tokens=trainer.max_completion_length, seed=self.seed)

    def __call__(self, prompts: Sequence, trainer=None) -> dict:
        prompts = list(prompts)
        if not prompts:
            raise PathpruneError("the rollout got no prompts")
        if trainer is not None:
            policy, tokenizer = _policy_of(trainer), trainer.processing_class
            self._step = int(trainer.state.global_step)
        else:
            if self.model is None:
                raise PathpruneError("without a trainer, build the rollout with model= and tokenizer=")
            policy, tokenizer = self.model, self.tokenizer
            self._step = self.totals.calls
        g = self.group_size(trainer)
        n = self.launched(g)
        if len(prompts) % g:
            raise PathpruneError(f"{len(prompts)} prompts is not a whole number of groups of G={g}")
        groups = [prompts[i] for i in range(0, len(prompts), g)]
        for i, first in enumerate(groups):
            if any(p != first for p in prompts[i * g:(i + 1) * g]):
                raise PathpruneError(f"prompts {i * g}..{(i + 1) * g - 1} are not one prompt repeated G={g} times "
                                     "(the trainer's RepeatSampler order)")
        params = self._sampling(trainer, n)
        self.sync(policy, tokenizer)
        self._maybe_refit()
        call = self.totals.calls
        requests = []
        for i, prompt in enumerate(groups):
            ids = self._recorder.encode(prompt)
            requests.append(Request(f"{self.seed}:{call}:{i}", tuple(ids), question_of(self.tokenizer, prompt), "text"))
        self._recorder.batches.clear()
        outs = self._pruner.run(requests, params)
        logprobs_ok = params.temperature == 1.0 and params.top_p == 1.0 and params.top_k == 0
        result = self._assemble(requests, outs, self._records(outs, n), g, logprobs_ok)
        self._log(trainer, outs, result)
        return result

    def _records(self, outs: list[RequestOutput], n: int) -> list[dict]:
        """Per request: path index -> the engine's record of that path (tokens and log-probabilities)."""
        flat = [rec for batch in self._recorder.batches for rec in batch]
        if len(flat) != len(outs) * n:
            raise PathpruneError(f"internal: {len(flat)} launched records for {len(outs)} prompts x {n} paths")
        per: list[dict] = [{} for _ in outs]
        for b, batch in enumerate(self._recorder.batches):
            offset = sum(len(x) for x in self._recorder.batches[:b]) // n
            for rec in batch:
                per[offset + rec.problem_index][rec.path_index] = rec
        return per

    def _assemble(self, requests: list[Request], outs: list[RequestOutput], records: list[dict], g: int,
                  logprobs_ok: bool) -> dict:
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [] if logprobs_ok else None,
                                **{f: [] for f in FIELDS}}
        stages = bool(self.schedule.stages)
        for request, o, recs in zip(requests, outs, records):
            if self.pruned == "drop" and stages:
                chosen = [p for p in o.paths if p.kept][:g]  # early finishers can add to the k resumed: lowest indices
            else:
                chosen = list(o.paths)
            if len(chosen) != g:
                raise PathpruneError(f"internal: {len(chosen)} completions for a group of {g}")
            dropped = len(o.paths) - len(chosen)
            for p in chosen:
                key = f"{request.id}:{p.index}"
                out["prompt_ids"].append(list(o.prompt_token_ids))
                out["completion_ids"].append(list(p.token_ids))
                if logprobs_ok:
                    out["logprobs"].append(list(recs[p.index].logprobs))
                row = {"pruned": not p.kept, "pruned_at": p.pruned_at, "checkpoint_scores": list(p.scores),
                       "path_tokens": p.num_tokens, "group_tokens": o.usage.generated,
                       "group_check_tokens": o.usage.check, "group_launched": len(o.paths),
                       "group_dropped": dropped, "path_index": p.index, "rollout_key": key}
                for name in FIELDS:
                    out[name].append(row[name])
                if p.kept and self.refit_every:
                    self._pending[key] = [
                        {"problem_id": request.id, "prefix_len": L, "prompt_len": len(o.prompt_token_ids),
                         "prefix_token_ids": list(o.prompt_token_ids) + list(p.token_ids[:L]),
                         "logprobs": list(recs[p.index].logprobs[:L]), "step": self._step}
                        for L in p.checked_at if p.num_tokens > L]  # where it was checked (steps: its own)
        return out

    def _log(self, trainer, outs: list[RequestOutput], result: dict) -> None:
        usage = [o.usage for o in outs]
        row = {"step": self._step, "groups": len(outs), "launched": sum(len(o.paths) for o in outs),
               "returned": len(result["completion_ids"]),
               "pruned": sum(not p.kept for o in outs for p in o.paths),
               "generated": sum(u.generated for u in usage), "check": sum(u.check for u in usage),
               "prompt": sum(u.prompt for u in usage),
               "returned_tokens": sum(len(c) for c in result["completion_ids"])}
        t = self.totals
        t.calls += 1
        t.groups += row["groups"]
        for name in ("launched", "returned", "pruned", "generated", "check", "prompt", "returned_tokens"):
            setattr(t, name, getattr(t, name) + row[name])
        row["total_generated"] = t.generated
        self.history.append(row)
        metrics = getattr(trainer, "_metrics", None)
        if isinstance(metrics, dict):
            mode = "train" if getattr(trainer.model, "training", True) else "eval"
            bucket = metrics.get(mode)
            if bucket is not None:
                bucket["pathprune/generated_tokens"].append(float(row["generated"]))
                bucket["pathprune/pruned_share"].append(row["pruned"] / max(1, row["launched"]))
                bucket["pathprune/check_tokens"].append(float(row["check"]))
                bucket["pathprune/total_generated_tokens"].append(float(t.generated))

    # -- rewards and STOP re-fits ----------------------------------------------------------------
    def reward(self, fn: Callable, *, labels: bool = True) -> Callable:
        """Wrap a TRL reward function: pruned completions get ``pruned_reward`` (``pruned="truncate"``), and the
        final rewards of kept completions become the labels of STOP's re-fits (``labels=True``; rewards are
        clipped to [0, 1] as labels). Give the wrapped function to ``GRPOTrainer(reward_funcs=...)``."""
        if not callable(fn):
            raise PathpruneError(f"reward needs a function, got {type(fn).__name__}")

        def wrapped(prompts=None, completions=None, **kwargs):
            keys, pruned = kwargs.get("rollout_key"), kwargs.get("pruned")
            if keys is None or pruned is None:
                raise PathpruneError("this reward function reads the pruned rollout's fields: give the same "
                                     "PrunedRollout as GRPOTrainer(rollout_func=...)")
            rewards = list(fn(prompts=prompts, completions=completions, **kwargs))
            if self.pruned == "truncate":
                rewards = [self.pruned_reward if cut else r for r, cut in zip(rewards, pruned)]
            if labels:
                self._receive(keys, rewards, pruned)
            return rewards

        wrapped.__name__ = getattr(fn, "__name__", "reward")
        wrapped.__doc__ = fn.__doc__
        return wrapped

    def _receive(self, keys: list[str], rewards: list, pruned: list[bool]) -> None:
        self._labels_seen = True
        for key, r, cut in zip(keys, rewards, pruned):
            recs = self._pending.pop(key, None)
            if cut or recs is None or r is None or (isinstance(r, float) and math.isnan(r)):
                continue
            label = min(1.0, max(0.0, float(r)))
            for rec in recs:
                self._labelled.append({**rec, "soft_label": label, "outcomes": [int(label >= 0.5)]})
        self._pending.clear()  # a reward never comes twice for one rollout

    def _maybe_refit(self) -> None:
        if not self.refit_every or self._step - self._last_refit < self.refit_every:
            return
        if not self._labels_seen:
            raise PathpruneError("refit_every needs the rollouts' rewards: give GRPOTrainer "
                                 "reward_funcs=rollout.reward(your_reward)")
        data = self._labelled
        by_group: dict[str, set] = {}
        for r in data:
            by_group.setdefault(r["problem_id"], set()).add(r["soft_label"] >= 0.5)
        informative = sum(len(v) == 2 for v in by_group.values())
        if len(by_group) < 5 or informative < 2:
            return  # too few labelled groups yet: keep collecting
        module = self.signal.module_for(self._copy)
        out = None if self.refit_dir is None else Path(self.refit_dir) / f"step-{self._step:05d}"
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        result = refit_stop(module, data, pad, adapter=self.refit == "head+adapter", cfg=self.refit_config, out=out)
        self.refits.append({"step": self._step, "records": len(data), "groups": len(by_group),
                            "train_records": result["train_records"], "val_records": result["val_records"],
                            "best": result["best"], "seconds": result["seconds"]})
        self._labelled = []
        self._last_refit = self._step


def pruned_rollout(signal: Signal | str | None = "stop", schedule: Schedule | str | None = "16:4", n: int | None = None,
                   *, pruned: str = "truncate", pruned_reward: float = 0.0, model=None, tokenizer=None, seed: int = 0,
                   problems_per_batch: int = 8, top_logprobs: int = 5, refit_every: int | None = None,
                   refit: str = "head", refit_config: TrainConfig | None = None,
                   refit_dir: str | Path | None = None, max_new_tokens: int | None = None) -> PrunedRollout:
    """A ``rollout_func`` for TRL's ``GRPOTrainer`` that launches ``n`` paths per prompt, prunes them with
    ``signal`` at ``schedule``'s checkpoints and returns the group the trainer expects.

    Args:
        signal: a pathprune signal (``"stop"``, ``"stop_lp"``, ``"stop:DIR"``, ``"mean_logprob"``,
            ``"conf_lowest"``, ...) or None with ``schedule=None`` (plain sampling through the same engine).
        schedule: ``"L:k"`` or a cascade ``"L1:k1,L2:k2"``; None or ``"none"``: no pruning.
        n: paths launched per prompt. ``pruned="truncate"`` or no pruning: n = G, the trainer's
            ``num_generations`` (the default); ``pruned="drop"``: n > G and the schedule ends at k = G.
        pruned: ``"truncate"`` (pruned prefixes stay in the group as truncated completions with
            ``pruned_reward``; wrap the reward with :meth:`PrunedRollout.reward`) or ``"drop"`` (they leave it).
        model, tokenizer: the policy, for calls without a trainer; from a trainer the rollout reads
            ``trainer.model`` (its current weights) and ``trainer.processing_class``.
        seed: seed of the per-path random streams (each call and prompt gets its own streams).
        refit_every: re-fit the STOP signal's head every this many optimiser steps on the rollouts' own final
            rewards (wrap the reward with :meth:`PrunedRollout.reward`); ``refit="head+adapter"`` also trains
            its [STOP] embeddings and adapter. ``refit_config``: the :class:`TrainConfig` of each re-fit.
        refit_dir: keep each re-fit's training record under ``DIR/step-NNNNN`` (default: discarded).
        max_new_tokens: completion length without a trainer (a trainer's ``max_completion_length`` wins).
    """
    if pruned not in MODES:
        raise PathpruneError(f"pruned must be one of {', '.join(MODES)}, got {pruned!r}", parameter="pruned",
                             value=pruned)
    sched = Schedule.of(schedule)
    if signal is None and sched.stages:
        raise PathpruneError("a pruning schedule needs a signal", parameter="signal")
    sig = get_signal(signal) if signal is not None else None
    if sig is not None:
        sig.validate()  # a bad checkpoint fails now
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise PathpruneError(f"n must be an integer >= 1, got {n!r}", parameter="n", value=n)
    if pruned == "drop" and sched.stages:
        if any(s.keep is None for s in sched.stages):
            raise PathpruneError("pruned='drop' needs top-k stages (L:k), not thresholds: the group size is fixed",
                                 parameter="schedule", value=str(sched))
        if n is not None:
            sched.check(n)
            if n <= sched.stages[-1].keep:
                raise PathpruneError(f"pruned='drop' launches more paths than it keeps: need n > "
                                     f"{sched.stages[-1].keep}, got n={n}", parameter="n", value=n)
    elif n is not None and sched.stages:
        sched.check(n)
    if isinstance(pruned_reward, bool) or not isinstance(pruned_reward, (int, float)) or not math.isfinite(pruned_reward):
        raise PathpruneError(f"pruned_reward must be a finite number, got {pruned_reward!r}",
                             parameter="pruned_reward", value=pruned_reward)
    if problems_per_batch < 1 or top_logprobs < 0:
        raise PathpruneError("problems_per_batch must be >= 1 and top_logprobs >= 0")
    if refit_every is not None:
        if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
            raise PathpruneError(f"refit_every must be an integer >= 1, got {refit_every!r}",
                                 parameter="refit_every", value=refit_every)
        if not isinstance(sig, StopSignal):
            raise PathpruneError(f"refit_every re-fits a STOP signal (stop, stop_lp, stop:DIR); got "
                                 f"{getattr(sig, 'name', None)!r}", parameter="signal", value=signal)
        if not sched.stages:
            raise PathpruneError("refit_every needs a schedule with a checkpoint (its prefixes are the training data)")
        if refit not in REFIT:
            raise PathpruneError(f"refit must be one of {', '.join(REFIT)}, got {refit!r}", parameter="refit",
                                 value=refit)
        sig = RefitStop(sig)
    return PrunedRollout(sig, sched, n, pruned=pruned, pruned_reward=float(pruned_reward), model=model,
                         tokenizer=tokenizer, seed=seed, problems_per_batch=problems_per_batch,
                         top_logprobs=top_logprobs, refit_every=refit_every, refit=refit, refit_config=refit_config,
                         refit_dir=refit_dir, max_new_tokens=max_new_tokens)
